"""cnnkit.analysis.rules"""
