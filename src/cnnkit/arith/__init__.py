"""cnnkit.arith"""
