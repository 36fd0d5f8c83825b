"""The FUSE layer: the only importer of pyfuse3. Inodes, handles, errnos, the mount loop."""
