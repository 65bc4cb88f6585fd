def main():
    print("mdr")
