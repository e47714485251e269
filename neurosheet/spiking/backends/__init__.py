"""spiking/backends"""
