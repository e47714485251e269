"""rate"""
