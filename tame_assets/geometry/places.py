"""Places in words for figures: station codes as site names ("Ny-Ålesund (NYA)") and latitudes and
longitudes as maps print them ("62°N", "145°W"; inputs in degrees north / east)."""

from __future__ import annotations

#: Camera and magnetometer sites in words, for titles (station code → place); other codes are shown as given.
STATION_NAMES = {
    "NYA": "Ny-Ålesund",
    "NAL": "Ny-Ålesund",
    "LYR": "Longyearbyen",
    "SOR": "Sørøya",
    "SKN": "Skibotn",
    "TRO": "Tromsø",
    "ATHA": "Athabasca",
    "CHBG": "Chibougamau",
    "CHUR": "Churchill",
    "EKAT": "Ekati",
    "FSIM": "Fort Simpson",
    "FSMI": "Fort Smith",
    "FYKN": "Fort Yukon",
    "GAKO": "Gakona",
    "GBAY": "Goose Bay",
    "GILL": "Gillam",
    "INUV": "Inuvik",
    "KAPU": "Kapuskasing",
    "KIAN": "Kiana",
    "KUUJ": "Kuujjuaq",
    "MCGR": "McGrath",
    "NRSQ": "Narsarsuaq",
    "PGEO": "Prince George",
    "PINA": "Pinawa",
    "RANK": "Rankin Inlet",
    "SNKQ": "Sanikiluaq",
    "TPAS": "The Pas",
    "WHIT": "Whitehorse",
    "YKNF": "Yellowknife",
    "BOU": "Boulder",
}


def station_label(code: str) -> str:
    """A station in words for a title: ``Ny-Ålesund (NYA)``; an unknown code as given."""
    code = str(code).strip()
    name = STATION_NAMES.get(code.upper())
    return f"{name} ({code.upper()})" if name else code


def lon_text(lon_deg: float, decimals: int = 0) -> str:
    """A longitude as maps print it: ``145°W``, ``12°E``, ``0°``, ``180°`` (input any °E value)."""
    lon = (float(lon_deg) + 180.0) % 360.0 - 180.0
    value = f"{abs(lon):.{decimals}f}"
    if float(value) == 0 or float(value) == 180:
        return f"{value}°"
    return f"{value}°{'W' if lon < 0 else 'E'}"


def lat_text(lat_deg: float, decimals: int = 0) -> str:
    """A latitude as maps print it: ``62°N``, ``12°S``."""
    value = f"{abs(float(lat_deg)):.{decimals}f}"
    return f"{value}°" if float(value) == 0 else f"{value}°{'S' if lat_deg < 0 else 'N'}"
