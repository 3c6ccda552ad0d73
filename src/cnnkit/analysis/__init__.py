"""cnnkit.analysis"""
