from scanner.cli import main

# Guarded: a local Dask cluster's worker processes are spawned, and each imports the main module again.
if __name__ == "__main__":
    main()
