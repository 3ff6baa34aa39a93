from . import DEMO_DIR, write_demo_data

write_demo_data()
print(f"wrote demo data to {DEMO_DIR}")
