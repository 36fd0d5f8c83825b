from neurofs.cli import main

main()
