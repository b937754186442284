from satgan.cli import main

raise SystemExit(main())
