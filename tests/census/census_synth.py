"""Tiny synthetic PUMS inputs: a mini dictionary, official-style zips and Parquet extracts."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import polars as pl

DICT_2018 = """\
NAME,RT,C,1,"Record Type"
VAL,RT,C,1,"P","P","Person Record"
NAME,SERIALNO,C,13,"Housing unit/GQ person serial number"
VAL,SERIALNO,C,13,"{y}GQ0000001","{y}GQ9999999","GQ Unique identifier"
VAL,SERIALNO,C,13,"{y}HU0000001","{y}HU9999999","HU Unique identifier"
NAME,ST,C,2,"State Code"
VAL,ST,C,2,"10","10","Delaware/DE"
VAL,ST,C,2,"50","50","Vermont/VT"
NAME,ST,C,2,"State Code (housing section duplicate)"
VAL,ST,C,2,"10","10","WRONG duplicate label"
NAME,SPORDER,N,2,"Person number"
VAL,SPORDER,N,2,01,20,"Person number"
NAME,PWGTP,N,5,"Person's weight"
VAL,PWGTP,N,5,1,9999,"Integer weight of person"
NAME,AGEP,N,2,"Age"
VAL,AGEP,N,2,0,0,"Under 1 year"
VAL,AGEP,N,2,1,99,"1 to 99 years (Top-coded)"
NAME,SEX,C,1,"Sex"
VAL,SEX,C,1,"1","1","Male"
VAL,SEX,C,1,"2","2","Female"
NAME,SCHL,C,2,"Educational attainment"
VAL,SCHL,C,2,"bb","bb","N/A (less than 3 years old)"
VAL,SCHL,C,2,"01","01","No schooling completed"
VAL,SCHL,C,2,"02","15","Grade school to 12th grade"
VAL,SCHL,C,2,"16","16","Regular high school diploma"
VAL,SCHL,C,2,"21","21","Bachelor's degree"
VAL,SCHL,C,2,"22","24","Graduate degree"
NAME,RELP,C,2,"Relationship"
VAL,RELP,C,2,"00","00","Reference person"
VAL,RELP,C,2,"01","01","Husband/wife"
VAL,RELP,C,2,"02","02","Biological son or daughter"
VAL,RELP,C,2,"16","16","Institutionalized group quarters population"
NAME,OCCP,C,4,"Occupation"
VAL,OCCP,C,4,"bbbb","bbbb","N/A (less than 16 years old)"
VAL,OCCP,C,4,"0010","0010","MGR-Chief Executives"
VAL,OCCP,C,4,"4020","4020","EAT-Cooks"
NAME,NAICSP,C,8,"NAICS recode"
VAL,NAICSP,C,8,"bbbbbbbb","bbbbbbbb","N/A"
VAL,NAICSP,C,8,"4453","4453","RET-Beer, Wine, And Liquor Stores"
VAL,NAICSP,C,8,"722Z","722Z","ENT-Restaurants"
NAME,PINCP,N,7,"Total person's income"
VAL,PINCP,N,7,bbbbbbb,bbbbbbb,"N/A (less than 15 years old)"
VAL,PINCP,N,7,0,0,"None"
VAL,PINCP,N,7,-19997,-1,"Loss $1 to $19997"
VAL,PINCP,N,7,1,4209995,"Total person's income in dollars"
NAME,MIL,C,1,"Military service"
VAL,MIL,C,1,"b","b","N/A (less than 17 years old)"
VAL,MIL,C,1,"1","1","Now on active duty"
VAL,MIL,C,1,"2","2","On active duty in the past, but not now"
VAL,MIL,C,1,"4","4","Never served in the military"
NAME,MAR,C,1,"Marital status"
VAL,MAR,C,1,"1","1","Married"
VAL,MAR,C,1,"5","5","Never married or under 15 years old"
NAME,HHT,C,1,"Household/family type"
VAL,HHT,C,1,"b","b","N/A (GQ/vacant)"
VAL,HHT,C,1,"1","1","Married couple household"
VAL,HHT,C,1,"4","4","Nonfamily household: Male householder: Living alone"
"""

COLUMNS = [
    "RT",
    "SERIALNO",
    "SPORDER",
    "ST",
    "PWGTP",
    "AGEP",
    "SEX",
    "SCHL",
    "RELP",
    "OCCP",
    "NAICSP",
    "PINCP",
    "MIL",
    "MAR",
]


def make_dictionary(path: Path, year: int = 2018) -> Path:
    path.write_text(DICT_2018.replace("{y}", str(year)))
    return path


def make_persons(state: str, n_households: int, seed: int, year: int = 2018) -> pl.DataFrame:
    """Synthetic person records: households of 1-4 people, official CSV spellings (strings, blanks)."""
    g = np.random.default_rng(seed)
    rows = []
    for h in range(n_households):
        serial = f"{year}HU{int(state) * 100000 + h:07d}"
        for p in range(int(g.integers(1, 5))):
            age = int(g.integers(0, 90)) if p else int(g.integers(18, 90))
            adult = age >= 18
            rows.append(
                {
                    "RT": "P",
                    "SERIALNO": serial,
                    "SPORDER": f"{p + 1:02d}",
                    "ST": state,
                    "PWGTP": str(int(g.integers(1, 300))),
                    "AGEP": str(age),
                    "SEX": str(int(g.integers(1, 3))),
                    "SCHL": "" if age < 3 else f"{int(g.choice([1, 9, 16, 21, 23])):02d}",
                    "RELP": "00" if p == 0 else f"{int(g.choice([1, 2])):02d}",
                    "OCCP": f"{int(g.choice([10, 4020])):04d}" if adult else "",
                    "NAICSP": str(g.choice(["4453", "722Z"])) if adult else "",
                    "PINCP": str(int(g.integers(-500, 90000))) if age >= 15 else "",
                    "MIL": str(int(g.choice([1, 2, 4]))) if age >= 17 else "",
                    "MAR": "1" if adult and g.random() < 0.5 else "5",
                }
            )
    return pl.DataFrame(rows, schema={c: pl.String for c in COLUMNS})


def write_zip(df: pl.DataFrame, path: Path, fips: str) -> Path:
    buf = io.BytesIO()
    df.write_csv(buf)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"psam_p{fips}.csv", buf.getvalue())
        zf.writestr("ACS2018_PUMS_README.pdf", b"%PDF-1.4 not really")
    return path
