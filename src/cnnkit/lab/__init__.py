"""cnnkit.lab"""
