"""engines/durable"""
