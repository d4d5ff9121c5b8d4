"""Pure export writers: plain manifest records (dicts) in, archive entries out.

Nothing here touches Django. Every writer is a generator of ``(name, chunks)`` pairs, consumed one
at a time by :class:`~skelex_web.exports.formats.archive.ZipSink`, so a 10,000-image dataset is
written without ever holding more than one record's labels in memory.
"""
