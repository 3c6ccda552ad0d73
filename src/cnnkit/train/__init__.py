"""cnnkit.train"""
