"""`python -m gpu_handler`: run the RunPod worker."""

from gpu_handler.start import main

main()
