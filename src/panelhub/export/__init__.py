"""Export: the CSV files a user downloads or a publisher sends, written as streams of text.

Pure: rows come in as iterators, text goes out as generators, so an export of years of data
never sits in memory. The storage query and the HTTP response belong to the callers.
"""
