"""Tiny synthetic census inputs for persona tests (no data mirror needed)."""

from __future__ import annotations

import polars as pl

from persona_testbed.census.dictionary import PumsDictionary

DICT_TEXT = """NAME,SERIALNO,C,13,"Housing unit/GQ person serial number"
VAL,SERIALNO,C,13,"2018GQ0000001","2018GQ9999999","GQ Unique identifier"
VAL,SERIALNO,C,13,"2018HU0000001","2018HU9999999","HU Unique identifier"
NAME,AGEP,N,2,"Age"
VAL,AGEP,N,2,"0","99","Age"
NAME,SEX,C,1,"Sex"
VAL,SEX,C,1,"1","1","Male"
VAL,SEX,C,1,"2","2","Female"
NAME,RAC1P,C,1,"Race"
VAL,RAC1P,C,1,"1","1","White alone"
VAL,RAC1P,C,1,"2","2","Black or African American alone"
NAME,HISP,C,2,"Hispanic"
VAL,HISP,C,2,"01","01","Not Spanish/Hispanic/Latino"
VAL,HISP,C,2,"02","02","Mexican"
NAME,SCHL,C,2,"Education"
VAL,SCHL,C,2,"bb","bb","N/A (less than 3 years old)"
VAL,SCHL,C,2,"16","16","Regular high school diploma"
VAL,SCHL,C,2,"21","21","Bachelor's degree"
NAME,ESR,C,1,"Employment"
VAL,ESR,C,1,"b","b","N/A (less than 16 years old)"
VAL,ESR,C,1,"1","1","Civilian employed, at work"
VAL,ESR,C,1,"6","6","Not in labor force"
NAME,OCCP,C,4,"Occupation"
VAL,OCCP,C,4,"bbbb","bbbb","N/A (less than 16 years old/NILF)"
VAL,OCCP,C,4,"3250","3250","MED-Veterinarians"
NAME,PINCP,N,7,"Income"
VAL,PINCP,N,7,"bbbbbbb","bbbbbbb","N/A (less than 15 years old)"
VAL,PINCP,N,7,"-19998","4209995","Income"
NAME,CIT,C,1,"Citizenship"
VAL,CIT,C,1,"1","1","Born in the United States"
VAL,CIT,C,1,"4","4","U.S. citizen by naturalization"
NAME,MAR,C,1,"Marital"
VAL,MAR,C,1,"1","1","Married"
VAL,MAR,C,1,"5","5","Never married or under 15 years old"
NAME,DIS,C,1,"Disability"
VAL,DIS,C,1,"1","1","With a disability"
VAL,DIS,C,1,"2","2","Without a disability"
NAME,HHT,C,1,"Household type"
VAL,HHT,C,1,"b","b","N/A (GQ/vacant)"
VAL,HHT,C,1,"1","1","Married couple household"
VAL,HHT,C,1,"2","2","Other family household: Male householder, no spouse present"
VAL,HHT,C,1,"3","3","Other family household: Female householder, no spouse present"
VAL,HHT,C,1,"4","4","Nonfamily household: Male householder: Living alone"
VAL,HHT,C,1,"5","5","Nonfamily household: Male householder: Not living alone"
VAL,HHT,C,1,"6","6","Nonfamily household: Female householder: Living alone"
VAL,HHT,C,1,"7","7","Nonfamily household: Female householder: Not living alone"
NAME,HHL,C,1,"Household language"
VAL,HHL,C,1,"b","b","N/A (GQ/vacant)"
VAL,HHL,C,1,"1","1","English only"
VAL,HHL,C,1,"2","2","Spanish"
NAME,LANP,C,4,"Language"
VAL,LANP,C,4,"bbbb","bbbb","N/A (GQ/vacant)"
VAL,LANP,C,4,"1200","1200","Spanish"
VAL,LANP,C,4,"2050","2050","Vietnamese"
NAME,PAOC,C,1,"Own children"
VAL,PAOC,C,1,"b","b","N/A (male/female under 16 years old/GQ)"
VAL,PAOC,C,1,"1","1","Females with own children under 6 years only"
VAL,PAOC,C,1,"4","4","Females with no own children"
"""


def dictionary() -> PumsDictionary:
    return PumsDictionary.parse(DICT_TEXT)


def persons(rows: list[dict]) -> pl.DataFrame:
    """Person rows in the census module's canonical form (type-C codes as strings, N as Int64)."""
    schema = {
        "SERIALNO": pl.Utf8,
        "SPORDER": pl.Int64,
        "STATE": pl.Utf8,
        "PWGTP": pl.Int64,
        "AGEP": pl.Int64,
        "SEX": pl.Utf8,
        "RAC1P": pl.Utf8,
        "HISP": pl.Utf8,
        "SCHL": pl.Utf8,
        "ESR": pl.Utf8,
        "OCCP": pl.Utf8,
        "PINCP": pl.Int64,
        "CIT": pl.Utf8,
        "MAR": pl.Utf8,
        "RELSHIPP": pl.Utf8,
        "LANX": pl.Utf8,
        "LANP": pl.Utf8,
        "PAOC": pl.Utf8,
        "DIS": pl.Utf8,
    }
    base = {
        "SERIALNO": "2018HU0000001",
        "SPORDER": 1,
        "STATE": "10",
        "PWGTP": 10,
        "AGEP": 40,
        "SEX": "1",
        "RAC1P": "1",
        "HISP": "01",
        "SCHL": "21",
        "ESR": "1",
        "OCCP": "3250",
        "PINCP": 52000,
        "CIT": "1",
        "MAR": "1",
        "RELSHIPP": "00",
        "LANX": "2",
        "LANP": None,
        "PAOC": None,
        "DIS": "2",
    }
    return pl.DataFrame([{**base, **r} for r in rows], schema=schema)
