"""What `pete up` starts without RunPod credentials: the stack launcher, the embedded model
server and `localpod` (the RunPod emulator). Development stand-ins, not the product.
"""
