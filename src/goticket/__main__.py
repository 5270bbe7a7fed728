from goticket.cli import main

main()
