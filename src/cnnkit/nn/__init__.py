"""cnnkit.nn"""
