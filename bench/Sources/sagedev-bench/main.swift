import SageCore
print("usage: sagedev-bench <fuzz|probe-cost> …")
