// Package checkpoint reads and writes neural-network checkpoints: a
// versioned, checksummed binary file holding named float32 tensors
// (weights and optimiser state) plus two opaque JSON blobs (the model spec
// and the training metadata).
//
// The package knows nothing about models or optimisers. It stores what it
// is given and checks only what it needs to decode the file safely, so the
// format can outlive changes to the rest of the engine. By convention,
// optimiser state is stored as extra tensors named after the parameter they
// belong to, e.g. "conv1.weight/adam.m" next to "conv1.weight".
//
// # Byte layout (version 1)
//
// All integers are unsigned and little-endian. Offsets are from the start
// of the file; those that depend on earlier variable-length fields are
// shown as ".".
//
//	offset  size          field
//	0       8             magic: the ASCII bytes "CNNVIZCK"
//	8       4             version: uint32, currently 1
//	12      4             specLen: uint32, at most MaxBlobLen (1 MiB)
//	16      specLen       spec: model spec, JSON, opaque to this package
//	.       4             metaLen: uint32, at most MaxBlobLen (1 MiB)
//	.       metaLen       meta: training state, JSON, opaque to this package
//	.       4             count: uint32, number of tensors, at most MaxTensors (4096)
//	.       ...           count tensor records, laid out as below
//	.       4             crc: uint32, CRC-32C (Castagnoli) of every byte before it
//
// Each tensor record is:
//
//	size          field
//	2             nameLen: uint16, 1..MaxNameLen (256)
//	nameLen       name: UTF-8, unique within the file
//	1             ndim: uint8, 1..MaxDims (8)
//	4 x ndim      dims: uint32 each, all >= 1, outermost first (row-major)
//	4 x product   data: IEEE-754 binary32 values, product(dims) <= MaxElements (1<<28)
//
// The crc is the last thing in the file; nothing may follow it. An empty
// spec or meta is stored as a zero length and read back as nil. A scalar is
// stored with shape [1]. Float values are stored bit for bit, so NaN
// payloads and negative zero survive a round trip.
//
// # Why it looks like this
//
// The layout follows the llm.c checkpoints: a fixed header followed by raw
// little-endian float arrays, which is trivial to read from any language
// and fast to stream. On top of that it adds what a long-lived training
// file needs:
//
//   - A magic string, so a wrong file is rejected immediately (ErrBadMagic).
//   - A version number. Version 1 is frozen: any change to the layout gets a
//     new version, and Read reports which version it found and which it
//     supports (ErrVersion) instead of misparsing.
//   - A trailing CRC-32C, so disk or transfer corruption is detected
//     (ErrChecksum) rather than silently loading wrong weights. CRC-32C is
//     hardware-accelerated on common CPUs, so it costs little next to the
//     I/O, and it detects every error burst of up to 32 bits, in particular
//     every single changed byte.
//   - Limits on every length field. As in gonum's mat/io.go, Read checks each
//     size before allocating, so a corrupt or hostile header cannot make it
//     allocate gigabytes (ErrTooBig). Tensor data is additionally allocated
//     as it arrives, so a short file claiming a large (but legal) tensor
//     fails with ErrTruncated after allocating roughly what it contained.
//
// Save replaces a file atomically, so a crash while checkpointing never
// destroys the previous checkpoint.
package checkpoint
