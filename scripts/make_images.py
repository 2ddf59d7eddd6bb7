#!/usr/bin/env python3
"""Generate one 600x400 flat-illustration product JPEG per row of the drinks catalog CSV.

Run from the repository root:
    pip install -r scripts/requirements-images.txt && python3 scripts/make_images.py

Optional arguments: make_images.py [CSV_PATH] [OUTPUT_DIR]
(defaults: <repo>/assets/products.csv and <repo>/assets/images, where <repo> is
this script's parent directory's parent). Output is deterministic: the same CSV
gives byte-identical images (variation per product comes from sha256 of its id).
"""

from __future__ import annotations

import argparse
import colorsys
import csv
import hashlib
import io
import math
import random
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = REPO_ROOT / "assets" / "products.csv"
DEFAULT_OUT = REPO_ROOT / "assets" / "images"

WIDTH, HEIGHT = 600, 400
SCALE = 2  # draw at 2x, then downsample for smooth (anti-aliased) edges
MAX_BYTES = 40_000  # every file must stay under 40 KB
JPEG_QUALITY = 84

Color = tuple[int, int, int]

# Background base colour per drink type as (hue degrees, lightness, saturation),
# plus the liquid colour drawn in the illustration.
TYPE_STYLE: dict[str, dict] = {
    "coffee": {"bg": (27, 0.40, 0.42), "liquid": (92, 56, 33)},
    "tea": {"bg": (112, 0.36, 0.36), "liquid": (184, 128, 52)},
    "cocoa": {"bg": (18, 0.27, 0.40), "liquid": (104, 60, 38)},
    "wine": {"bg": (344, 0.42, 0.48), "liquid": (246, 168, 178)},
    "juice": {"bg": (28, 0.66, 0.92), "liquid": (255, 132, 10)},
    "smoothie": {"bg": (332, 0.60, 0.62), "liquid": (158, 34, 92)},
    "spirits": {"bg": (184, 0.23, 0.55), "liquid": (236, 190, 82)},
    "water": {"bg": (203, 0.80, 0.62), "liquid": (104, 184, 232)},
}
DEFAULT_STYLE = {"bg": (220, 0.40, 0.20), "liquid": (200, 160, 110)}

# A few name keywords get a more fitting liquid colour than the type default.
LIQUID_BY_KEYWORD: list[tuple[str, Color]] = [
    ("watermelon", (238, 72, 96)),
    ("orange", (255, 160, 18)),
    ("mimosa", (255, 178, 58)),
    ("champagne", (242, 214, 128)),
    ("green tea", (150, 176, 58)),
    ("chai", (196, 130, 72)),
    ("citrus wine", (244, 222, 120)),
]

MUG_COLOURS: list[Color] = [
    (250, 247, 241),  # cream
    (255, 255, 255),  # white
    (232, 122, 96),  # terracotta
    (70, 96, 140),  # navy
    (214, 234, 222),  # mint
    (247, 212, 120),  # mustard
]
GOLD: Color = (232, 190, 92)
DARK_TEXT: Color = (33, 27, 24)
WHITE: Color = (255, 255, 255)


# ---------------------------------------------------------------- helpers

class Seed:
    """Deterministic per-product variation derived from sha256(id)."""

    def __init__(self, key: str, name: str = "") -> None:
        self.name = name.lower()
        self.digest = hashlib.sha256(key.encode("utf-8")).digest()
        self.rng = random.Random(int.from_bytes(self.digest[:8], "big"))

    def unit(self, i: int) -> float:
        """A value in [-1, 1] taken from byte i of the digest."""
        return self.digest[i] / 127.5 - 1.0


def hls_colour(h_deg: float, l: float, s: float) -> Color:
    r, g, b = colorsys.hls_to_rgb((h_deg % 360) / 360.0, clamp(l, 0, 1), clamp(s, 0, 1))
    return (round(r * 255), round(g * 255), round(b * 255))


def clamp(v: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, v))


def mix(a: Color, b: Color, t: float) -> Color:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


def shade(c: Color, amount: float) -> Color:
    """amount > 0 lightens towards white, < 0 darkens towards black."""
    return mix(c, WHITE, amount) if amount >= 0 else mix(c, (0, 0, 0), -amount)


def rgba(c: Color, a: int) -> tuple[int, int, int, int]:
    return (c[0], c[1], c[2], a)


def luminance(c: Color) -> float:
    def lin(v: int) -> float:
        x = v / 255.0
        return x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2])


def contrast(a: Color, b: Color) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def format_price(raw: str) -> str:
    try:
        value = Decimal(raw.strip())
    except (InvalidOperation, AttributeError):
        return ""
    return f"${value.quantize(Decimal('0.01'))}"


def font(size: int) -> ImageFont.FreeTypeFont:
    f = ImageFont.load_default(size=size)
    if not isinstance(f, ImageFont.FreeTypeFont):
        sys.exit("error: Pillow was built without FreeType; need a scalable load_default() font (Pillow >= 10.1)")
    return f


class Pen:
    """ImageDraw wrapper taking 1x coordinates and drawing (blended) at SCALE."""

    def __init__(self, img: Image.Image) -> None:
        self.img = img
        self.d = ImageDraw.Draw(img, "RGBA")

    @staticmethod
    def p(pts):
        return [(x * SCALE, y * SCALE) for x, y in pts]

    @staticmethod
    def box(b):
        return [v * SCALE for v in b]

    def polygon(self, pts, fill=None, outline=None, width=1):
        self.d.polygon(self.p(pts), fill=fill, outline=outline, width=round(width * SCALE))

    def ellipse(self, b, fill=None, outline=None, width=1):
        self.d.ellipse(self.box(b), fill=fill, outline=outline, width=round(width * SCALE))

    def circle(self, cx, cy, r, fill=None, outline=None, width=1):
        self.ellipse((cx - r, cy - r, cx + r, cy + r), fill, outline, width)

    def rrect(self, b, r, fill=None, outline=None, width=1):
        self.d.rounded_rectangle(self.box(b), radius=r * SCALE, fill=fill, outline=outline,
                                 width=round(width * SCALE))

    def line(self, pts, fill, width, round_caps=True):
        # Draw into a mask first so overlapping joints/caps of a translucent line
        # do not blend twice (which would show up as beads along the line).
        alpha = fill[3] if len(fill) == 4 else 255
        mask = Image.new("L", self.img.size, 0)
        md = ImageDraw.Draw(mask)
        md.line(self.p(pts), fill=255, width=round(width * SCALE), joint="curve")
        if round_caps:
            r = (width / 2 - 0.25) * SCALE
            for x, y in self.p([pts[0], pts[-1]]):
                md.ellipse((x - r, y - r, x + r, y + r), fill=255)
        if alpha < 255:
            mask = mask.point(lambda v: v * alpha // 255)
        self.img.paste(tuple(fill[:3]), (0, 0), mask)

    def arc(self, b, start, end, fill, width):
        self.d.arc(self.box(b), start, end, fill=fill, width=round(width * SCALE))

    def text(self, xy, s, fnt, fill, **kw):
        self.d.text((xy[0] * SCALE, xy[1] * SCALE), s, font=fnt, fill=fill, **kw)


def ellipse_points(cx, cy, rx, ry, angle_deg=0.0, n=36):
    a = math.radians(angle_deg)
    pts = []
    for i in range(n):
        t = 2 * math.pi * i / n
        x, y = rx * math.cos(t), ry * math.sin(t)
        pts.append((cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)))
    return pts


def rotated_square(cx, cy, half, angle_deg):
    a = math.radians(angle_deg)
    out = []
    for dx, dy in ((-half, -half), (half, -half), (half, half), (-half, half)):
        out.append((cx + dx * math.cos(a) - dy * math.sin(a), cy + dx * math.sin(a) + dy * math.cos(a)))
    return out


def vessel(profile, top, bottom, cx=300.0, steps=40):
    """Closed polygon for a symmetric vessel; profile(y) gives the half-width at y."""
    ys = [top + (bottom - top) * i / steps for i in range(steps + 1)]
    right = [(cx + profile(y), y) for y in ys]
    left = [(cx - profile(y), y) for y in reversed(ys)]
    return right + left


# ---------------------------------------------------------------- scene parts

def background(style, seed: Seed) -> tuple[Image.Image, Color, Color]:
    h, l, s = style["bg"]
    h += 9 * seed.unit(0)
    l += 0.05 * seed.unit(1)
    s += 0.08 * seed.unit(2)
    top = hls_colour(h - 4, l + 0.09, s)
    bottom = hls_colour(h + 4, l - 0.07, s)
    w, hh = WIDTH * SCALE, HEIGHT * SCALE
    mask = Image.linear_gradient("L").resize((w, hh), Image.Resampling.BILINEAR)
    img = Image.composite(Image.new("RGB", (w, hh), bottom), Image.new("RGB", (w, hh), top), mask)

    # A few large, soft, low-contrast circles for depth (smooth, so they compress well).
    deco = Image.new("L", (w, hh), 0)
    dd = ImageDraw.Draw(deco)
    rng = seed.rng
    for _ in range(3):
        r = rng.randint(70, 170) * SCALE
        x = rng.choice([rng.randint(-40, 140), rng.randint(460, 640)]) * SCALE
        y = rng.randint(-40, 300) * SCALE
        dd.ellipse((x - r, y - r, x + r, y + r), fill=rng.randint(16, 30))
    deco = deco.filter(ImageFilter.GaussianBlur(6 * SCALE))
    img = Image.composite(Image.new("RGB", (w, hh), WHITE), img, deco)
    return img, top, bottom


def soft_shadow(img: Image.Image, box, strength=90) -> None:
    w, h = img.size
    m = Image.new("L", (w, h), 0)
    ImageDraw.Draw(m).ellipse([v * SCALE for v in box], fill=strength)
    m = m.filter(ImageFilter.GaussianBlur(7 * SCALE))
    img.paste(Image.new("RGB", (w, h), (0, 0, 0)), (0, 0), m)


def draw_mug(img, pen: Pen, seed: Seed, liquid: Color, drink_type: str, name: str, accent: Color):
    rng = seed.rng
    mug = MUG_COLOURS[seed.digest[3] % len(MUG_COLOURS)]
    mug_dark = shade(mug, -0.16)
    soft_shadow(img, (190, 232, 410, 258))
    # saucer
    pen.ellipse((192, 222, 408, 252), fill=shade(mug, -0.08))
    pen.ellipse((214, 224, 386, 242), fill=shade(mug, -0.2))
    # handle (behind the body)
    pen.ellipse((338, 128, 412, 204), outline=mug_dark, width=15)
    # body
    pen.rrect((214, 104, 362, 236), 26, fill=mug)
    pen.rrect((214, 104, 362, 130), 0, fill=mug)  # square top corners
    # a decorative band or dots on the mug
    if seed.digest[4] % 2:
        pen.rrect((214, 168, 362, 182), 0, fill=rgba(accent, 230))
    else:  # a small heart
        hx, hy = 288, 170
        pen.circle(hx - 8, hy, 9, fill=accent)
        pen.circle(hx + 8, hy, 9, fill=accent)
        pen.polygon([(hx - 16.5, hy + 3), (hx + 16.5, hy + 3), (hx, hy + 22)], fill=accent)
    # highlight
    pen.rrect((226, 128, 236, 214), 5, fill=(255, 255, 255, 70))
    # rim + liquid
    pen.ellipse((214, 92, 362, 116), fill=mug_dark)
    pen.ellipse((222, 95, 354, 113), fill=liquid)
    if drink_type == "cocoa":
        for dx, dy in ((-28, 0), (-8, -3), (14, 1), (32, -2)):
            pen.rrect((288 + dx - 7, 101 + dy, 288 + dx + 7, 110 + dy), 3, fill=(252, 246, 240))
    elif drink_type == "coffee" and ("latte" in name.lower() or "cloud" in name.lower()):
        pen.ellipse((258, 98, 318, 110), fill=shade(liquid, 0.55))
        pen.ellipse((274, 101, 302, 107), fill=shade(liquid, 0.25))
    # steam
    for i, x0 in enumerate((256, 288, 320)):
        phase = rng.uniform(0, math.tau)
        length = 50 + 8 * ((i + seed.digest[5]) % 3)
        pts = []
        for k in range(25):
            t = k / 24
            pts.append((x0 + 7 * math.sin(phase + t * 2.2 * math.pi), 84 - t * length))
        pen.line(pts, fill=(255, 255, 255, 150), width=6)


def draw_tall_glass(img, pen: Pen, seed: Seed, liquid: Color, drink_type: str, outline: Color):
    rng = seed.rng
    top, bottom = 62, 246
    profile = lambda y: 58 - 12 * (y - top) / (bottom - top)  # noqa: E731
    soft_shadow(img, (236, 236, 364, 258))
    glass = vessel(profile, top, bottom)
    pen.polygon(glass, fill=(255, 255, 255, 45))
    fill_top = 100 + 8 * seed.unit(6)
    inner = vessel(lambda y: profile(y) - 6, fill_top, bottom - 8)
    # straw (behind the liquid)
    straw_col = (255, 255, 255) if drink_type != "water" else (255, 110, 110)
    sx = 310 + 6 * seed.unit(7)
    pen.line([(sx - 10, 226), (sx + 22, 58), (sx + 52, 30)], fill=rgba(straw_col, 235), width=9)
    pen.polygon(inner, fill=rgba(liquid, 228))
    # surface line
    pen.line([(300 - profile(fill_top) + 6, fill_top), (300 + profile(fill_top) - 6, fill_top)],
             fill=rgba(shade(liquid, 0.35), 255), width=4, round_caps=False)
    if drink_type == "smoothie":
        # berries on top
        for dx in (-24, -4, 18):
            pen.circle(300 + dx, fill_top - 7 + 2 * seed.unit(8), 10, fill=(120, 26, 72))
            pen.circle(300 + dx - 3, fill_top - 10, 3, fill=(255, 255, 255, 120))
    else:
        # ice cubes
        for cx, cy, half in ((278, fill_top + 24, 17), (318, fill_top + 34, 16), (292, fill_top + 66, 15)):
            ang = rng.uniform(-25, 25)
            pen.polygon(rotated_square(cx, cy, half, ang), fill=(255, 255, 255, 105),
                        outline=(255, 255, 255, 190), width=2.5)
        # bubbles
        for _ in range(5):
            bx = 300 + rng.uniform(-34, 34)
            by = rng.uniform(fill_top + 90, bottom - 24)
            pen.circle(bx, by, rng.uniform(2.5, 4.5), outline=(255, 255, 255, 150), width=1.5)
    if drink_type in ("juice", "water"):
        # citrus wheel on the rim
        wheel = (255, 170, 40) if drink_type == "juice" else (160, 205, 70)
        cx, cy, r = 246, 66, 24
        pen.circle(cx, cy, r, fill=shade(wheel, -0.1))
        pen.circle(cx, cy, r - 4, fill=shade(wheel, 0.55))
        for k in range(8):
            a1, a2 = k * 45 + 4, k * 45 + 41
            pen.d.pieslice(pen.box((cx - r + 7, cy - r + 7, cx + r - 7, cy + r - 7)), a1, a2, fill=wheel)
    # glass outline + highlight
    pen.polygon(glass, outline=rgba(outline, 210), width=4)
    pen.line([(250, 80), (253, 230)], fill=(255, 255, 255, 110), width=6)


def draw_stemmed_glass(img, pen: Pen, seed: Seed, liquid: Color, drink_type: str, outline: Color):
    rng = seed.rng
    soft_shadow(img, (240, 238, 360, 258))
    if drink_type == "wine":
        top, bottom, cy, rx, ry = 60, 170, 98, 64, 72

        def profile(y):
            return rx * math.sqrt(max(0.0, 1 - ((y - cy) / ry) ** 2)) if y > cy else rx - 6 * (cy - y) / (cy - top)

        fill_top = 120
    else:  # flute
        top, bottom = 46, 178

        def profile(y):
            t = (y - top) / (bottom - top)
            return 34 - 4 * t if t < 0.75 else (34 - 3) * math.sqrt(max(0.0, (1 - t) / 0.25))

        fill_top = 74
    bowl = vessel(profile, top, bottom)
    pen.polygon(bowl, fill=(255, 255, 255, 45))
    liquid_poly = vessel(lambda y: max(0.0, profile(y) - 5), fill_top, bottom - 4)
    pen.polygon(liquid_poly, fill=rgba(liquid, 235))
    pen.line([(300 - profile(fill_top) + 5, fill_top), (300 + profile(fill_top) - 5, fill_top)],
             fill=rgba(shade(liquid, 0.4), 255), width=3, round_caps=False)
    for _ in range(7):
        bx = 300 + rng.uniform(-0.5, 0.5) * profile((fill_top + bottom) / 2)
        by = rng.uniform(fill_top + 12, bottom - 14)
        pen.circle(bx, by, rng.uniform(2, 3.5), fill=(255, 255, 255, 150))
    glass_col = rgba(outline, 215)
    pen.polygon(bowl, outline=glass_col, width=4)
    # stem and foot
    pen.rrect((296, bottom - 2, 304, 238), 3, fill=glass_col)
    pen.ellipse((256, 230, 344, 246), fill=glass_col)
    pen.line([(300 - profile(fill_top) * 0.62, top + 18), (300 - profile(fill_top) * 0.66, bottom - 30)],
             fill=(255, 255, 255, 120), width=5)
    if any(word in seed.name for word in ("mimosa", "summer", "cocktail")):
        # fruit slice on the rim
        cx, cy, r = 300 + profile(top) - 4, top + 2, 18
        pen.circle(cx, cy, r, fill=(255, 150, 30))
        pen.circle(cx, cy, r - 4, fill=(255, 214, 140))
        for k in range(6):
            pen.d.pieslice(pen.box((cx - r + 6, cy - r + 6, cx + r - 6, cy + r - 6)), k * 60 + 5, k * 60 + 55,
                           fill=(255, 165, 40))


def coffee_bean(pen: Pen, cx, cy, rx, ry, ang, colour: Color):
    pen.polygon(ellipse_points(cx, cy, rx, ry, ang), fill=colour)
    a = math.radians(ang)
    pts = []
    for k in range(13):
        t = -1 + 2 * k / 12
        x, y = t * rx * 0.8, ry * 0.28 * math.sin(t * math.pi)
        pts.append((cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)))
    pen.line(pts, fill=shade(colour, 0.35), width=2.2)


def draw_bag(img, pen: Pen, seed: Seed, liquid: Color, drink_type: str, name: str, accent: Color):
    rng = seed.rng
    lname = name.lower()
    if drink_type == "tea":
        paper = hls_colour(95 + 10 * seed.unit(9), 0.82, 0.30)
    else:
        paper = hls_colour(32 + 5 * seed.unit(9), 0.66 + 0.04 * seed.unit(10), 0.42)
    soft_shadow(img, (206, 234, 394, 258))
    # body (slightly tapered towards the top), folded top with crimped edge
    body = [(232, 84), (368, 84), (380, 246), (220, 246)]
    pen.polygon(body, fill=paper)
    pen.polygon([(340, 84), (368, 84), (380, 246), (352, 246)], fill=shade(paper, -0.1))  # side gusset
    pen.polygon([(228, 60), (372, 60), (368, 88), (232, 88)], fill=shade(paper, -0.18))
    teeth = [(228 + 12 * k, 60 if k % 2 == 0 else 54) for k in range(13)]
    pen.polygon(teeth + [(372, 60), (228, 60)], fill=shade(paper, -0.18))
    # label
    pen.rrect((248, 118, 352, 214), 12, fill=(252, 249, 243))
    pen.rrect((248, 118, 352, 130), 0, fill=rgba(accent, 235))
    pen.rrect((248, 118, 352, 134), 6, fill=rgba(accent, 235))
    if drink_type == "tea":
        leaf = (96, 150, 70)
        pts = []
        for k in range(21):
            t = k / 20
            pts.append((300 + 22 * math.sin(math.pi * t), 194 - 52 * t))
        for k in range(21):
            t = 1 - k / 20
            pts.append((300 - 22 * math.sin(math.pi * t), 194 - 52 * t))
        rot = [(300 + (x - 300) * math.cos(0.5) - (y - 168) * math.sin(0.5),
                168 + (x - 300) * math.sin(0.5) + (y - 168) * math.cos(0.5)) for x, y in pts]
        pen.polygon(rot, fill=leaf)
        a = 0.5
        pen.line([(300 - 24 * math.sin(a), 168 + 24 * math.cos(a)), (300 + 22 * math.sin(a), 168 - 22 * math.cos(a))],
                 fill=shade(leaf, 0.4), width=2.5)
    elif "ground" in lname:
        # a little mound of grounds
        pen.d.chord(pen.box((266, 160, 334, 218)), 180, 360, fill=(74, 44, 26))
        for dx in (-18, -4, 10, 22):
            pen.circle(300 + dx, 184 + abs(dx) * 0.2, 2.2, fill=(120, 78, 48))
    else:
        bean = (88, 52, 30)
        coffee_bean(pen, 286, 168, 17, 12, -30, bean)
        coffee_bean(pen, 316, 180, 17, 12, 25, shade(bean, 0.08))
    # a few beans / leaves at the foot of the bag
    for k in range(3):
        bx = 214 - 10 * k + rng.uniform(-4, 4) if k < 2 else 392 + rng.uniform(-4, 4)
        by = 246 - (k % 2) * 6
        if drink_type == "tea":
            pen.polygon(ellipse_points(bx, by, 10, 5, rng.uniform(-40, 40), 20), fill=(96, 150, 70))
        else:
            coffee_bean(pen, bx, by, 10, 7, rng.uniform(-60, 60), (88, 52, 30))


# ---------------------------------------------------------------- text

def fit_name(draw: ImageDraw.ImageDraw, name: str, max_w: int) -> tuple[list[str], ImageFont.FreeTypeFont]:
    for size in range(50, 33, -2):
        f = font(size * SCALE)
        if draw.textlength(name, font=f) <= max_w * SCALE:
            return [name], f
    # Too long for one line: split at the space that best balances the two lines.
    words = name.split()
    if len(words) > 1:
        splits = [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]
        a, b = min(splits, key=lambda s: abs(len(s[0]) - len(s[1])))
        for size in range(40, 23, -2):
            f = font(size * SCALE)
            if max(draw.textlength(a, font=f), draw.textlength(b, font=f)) <= max_w * SCALE:
                return [a, b], f
    return [name], font(24 * SCALE)


def draw_text(img: Image.Image, pen: Pen, name: str, price: str, bg_mid: Color, accent: Color) -> None:
    text_col = WHITE if contrast(WHITE, bg_mid) >= contrast(DARK_TEXT, bg_mid) else DARK_TEXT
    lines, f = fit_name(pen.d, name, 556)
    line_h = f.size / SCALE * 1.12
    name_y = 300 if len(lines) == 1 else 290
    ys = [name_y + (i - (len(lines) - 1) / 2) * line_h for i in range(len(lines))]
    if price:
        ys = [y - 12 for y in ys]
    if text_col == WHITE:
        # soft drop shadow behind light text
        mask = Image.new("L", img.size, 0)
        md = ImageDraw.Draw(mask)
        for line, y in zip(lines, ys):
            md.text((300 * SCALE, (y + 2) * SCALE), line, font=f, fill=110, anchor="mm",
                    stroke_width=SCALE, stroke_fill=110)
        img.paste((0, 0, 0), (0, 0), mask.filter(ImageFilter.GaussianBlur(2 * SCALE)))
    for line, y in zip(lines, ys):
        # a thin same-colour stroke gives the regular face a slightly bolder weight
        pen.text((300, y), line, f, fill=text_col, anchor="mm", stroke_width=SCALE // 2, stroke_fill=text_col)
    if price:
        pf = font(26 * SCALE)
        py = ys[-1] + line_h / 2 + 34
        w = pen.d.textlength(price, font=pf) / SCALE
        pill_fill = accent if contrast(accent, bg_mid) > 1.6 else text_col
        price_col = WHITE if contrast(WHITE, pill_fill) >= contrast(DARK_TEXT, pill_fill) else DARK_TEXT
        pen.rrect((300 - w / 2 - 18, py - 19, 300 + w / 2 + 18, py + 19), 19, fill=pill_fill)
        pen.text((300, py), price, pf, fill=price_col, anchor="mm")


# ---------------------------------------------------------------- main

def render(row: dict[str, str]) -> bytes:
    pid = (row.get("id") or "").strip()
    name = (row.get("name") or "").strip() or Path(row["filename"]).stem.replace("-", " ").title()
    drink_type = (row.get("type") or "").strip().lower()
    temperature = (row.get("temperature") or "").strip().lower()
    alcoholic = (row.get("alcoholic") or "").strip().lower() == "alcoholic"
    style = TYPE_STYLE.get(drink_type, DEFAULT_STYLE)
    seed = Seed(pid or row["filename"], name)

    liquid = style["liquid"]
    for kw, col in LIQUID_BY_KEYWORD:
        if kw in name.lower():
            liquid = col
            break

    img, top, bottom = background(style, seed)
    bg_mid = mix(top, bottom, 0.78)  # roughly the colour behind the text
    pen = Pen(img)
    # accent colour: gold for spirits, otherwise a complementary-ish tint of the background
    h, l, s = style["bg"]
    if drink_type == "spirits":
        accent = GOLD
    else:
        accent = hls_colour(h + 180 + 20 * seed.unit(11), 0.55 if l < 0.6 else 0.35, 0.55)
    outline = WHITE if luminance(mix(top, bottom, 0.4)) < 0.45 else shade(bottom, -0.35)

    if temperature == "hot":
        draw_mug(img, pen, seed, liquid, drink_type, name, accent)
    elif temperature == "cold" and alcoholic:
        draw_stemmed_glass(img, pen, seed, liquid, drink_type, outline)
    elif temperature == "cold":
        draw_tall_glass(img, pen, seed, liquid, drink_type, outline)
    else:  # no temperature: beans, grounds or loose-leaf blend
        draw_bag(img, pen, seed, liquid, drink_type, name, accent)

    draw_text(img, pen, name, format_price(row.get("price") or ""), bg_mid, accent)

    out = img.resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=False, subsampling="4:2:0")
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV, help=f"catalog CSV (default: {DEFAULT_CSV})")
    ap.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    args = ap.parse_args(argv)

    with args.csv.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    args.out.mkdir(parents=True, exist_ok=True)

    seen: dict[str, str] = {}
    too_big: list[str] = []
    written = 0
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        filename = (row.get("filename") or "").strip()
        if not filename:
            print(f"warning: line {n}: empty filename, skipped", file=sys.stderr)
            continue
        if Path(filename).name != filename or not filename.lower().endswith((".jpeg", ".jpg")):
            sys.exit(f"error: line {n}: unsafe or non-JPEG filename {filename!r}")
        if filename in seen:
            print(f"note: line {n}: {filename} already generated for id {seen[filename]}; skipped", file=sys.stderr)
            continue
        seen[filename] = row.get("id", "")
        data = render({**row, "filename": filename})
        if len(data) >= MAX_BYTES:
            too_big.append(f"{filename} ({len(data)} bytes)")
            continue
        (args.out / filename).write_bytes(data)
        written += 1

    if too_big:
        sys.exit(f"error: {len(too_big)} image(s) not under {MAX_BYTES} bytes: " + ", ".join(too_big))
    print(f"wrote {written} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
