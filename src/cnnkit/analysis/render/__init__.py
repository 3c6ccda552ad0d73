"""cnnkit.analysis.render"""
