# shown in: docs/data.md
"""The arithmetic of docs/data.md: disk space of the prepared ImageNet, and why the colour sums are exact."""

TRAIN, VAL, SIDE = 1_281_167, 50_000, 256
image = SIDE * SIDE * 3          # bytes: one per channel, no compression
print("| split | images | bytes | |")
print("|---|---|---|---|")
for name, count in (("train", TRAIN), ("val", VAL)):
    size = count * image
    print(f"| {name} | {count:,} | {count:,} * {image:,} = {size:,} | {size / 1e9:.1f} GB = {size / 2**30:.1f} GiB |")
both = (TRAIN + VAL) * image
print(f"| both | {TRAIN + VAL:,} | {both:,} | {both / 1e9:.1f} GB = {both / 2**30:.1f} GiB |")
print()
print(f"1.28e6 * {image:,} = {1.28e6 * image:.3e} bytes")
print()
largest = TRAIN * SIDE * SIDE * 255 ** 2
print(f"largest sum: {TRAIN:,} images * {SIDE * SIDE:,} pixels * 255^2 = {largest:.1e}; "
      f"float64 holds integers exactly up to 2^53 = {2.0 ** 53:.1e}")
