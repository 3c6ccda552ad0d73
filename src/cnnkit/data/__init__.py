"""cnnkit.data"""
