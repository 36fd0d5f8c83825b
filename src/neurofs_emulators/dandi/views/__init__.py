"""The DANDI API's views, one module per resource (as ``dandiapi/api/views`` has them).

Each module holds one group of handlers, a class over :class:`.base.Views` (the archive and
the checks every view shares) and :class:`.serializers.Serializers` (how objects are
written); :class:`neurofs_emulators.dandi.app.DandiAPI` is all of them together.
"""
