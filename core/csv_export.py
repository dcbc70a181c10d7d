"""CSV files that staff open in a spreadsheet: no cell may run as a formula.

A company name such as `=HYPERLINK(...)` comes from Codat or a customer, and a spreadsheet
would evaluate it beside the one-time links the file carries (CSV injection, OWASP). Written
here rather than taken from defusedcsv, whose 3.0.0 leaves a leading tab or carriage return
alone; OWASP lists both.
"""

import csv

# The characters OWASP names as starting a formula in Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """The value as a cell that shows as text: a leading quote before a formula's first
    character (spreadsheets hide it). Numbers and other non-strings pass as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeCsvWriter:
    """csv.writer, with every cell passed through `spreadsheet_safe`."""

    def __init__(self, buffer, **options):
        self._writer = csv.writer(buffer, **options)

    def writerow(self, row):
        return self._writer.writerow([spreadsheet_safe(value) for value in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)
