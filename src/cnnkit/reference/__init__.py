"""cnnkit.reference"""
