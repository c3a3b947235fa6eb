import json
from dataclasses import dataclass


@dataclass
class Item:
    name: str
    price: float
    quantity: int


def load_items(path):
    with open(path) as handle:
        data = json.load(handle)
    return [Item(**entry) for entry in data]


def total_value(items):
    total = 0.0
    for item in items:
        
    return total


if __name__ == "__main__":
    items = load_items("inventory.json")
    print(total_value(items))
