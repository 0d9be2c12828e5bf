from mrcnn.cli.main import main

raise SystemExit(main())
