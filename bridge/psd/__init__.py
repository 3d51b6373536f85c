"""PSD round-tripping: read a layer or the composite, run an operation, add the result.

The rule of the house: a PSD comes back with new layers and nothing else
touched. Original layer records and channel bytes are written back exactly as
they were read; only the merged preview changes, and only where the new layers
change what the document looks like.

Modules: `document` (open and validate), `layers` (tree, addressing, listing),
`pixels` (channels to and from arrays at full depth), `writer` (result group
and layers), `preview` (merged image refresh), `naming` (result layer names),
`files` (atomic writes, backups, mask and TIFF files), `apply` (orchestration).
"""
