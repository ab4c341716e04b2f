from neuroseq.cli import main

raise SystemExit(main())
