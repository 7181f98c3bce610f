"""Recipes: the values a recipe holds, its schema checks, and loading the recipe book."""
