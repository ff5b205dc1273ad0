using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Qwen3.Net.Loading.Gguf;

/// <summary>Value types of GGUF metadata (<c>enum gguf_type</c>).</summary>
internal enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>
/// A metadata value as it lies in the file: its type, and where its payload starts. For an array, the element type and
/// count (the payload offset is then that of the first element). Validated to lie inside the file.
/// </summary>
internal readonly record struct GgufValue(GgufValueType Type, long Offset, GgufValueType ElementType, long Count);

/// <summary>A tensor of a GGUF file: ggml dimensions (<c>Dims[0]</c> is the contiguous one) and its bytes in the map.</summary>
internal readonly unsafe record struct GgufTensor(string Name, GgmlType Type, long[] Dims, long Offset, long ByteLength)
{
    /// <summary>Rows × columns in row-major order (ggml's dimensions reversed), as safetensors and the weights list them.</summary>
    public int[] RowMajorShape
    {
        get
        {
            var shape = new int[Dims.Length];
            for (int i = 0; i < Dims.Length; i++)
                shape[i] = (int)Dims[Dims.Length - 1 - i];
            return shape;
        }
    }
}

/// <summary>
/// One GGUF file (versions 2 and 3, little-endian), memory-mapped read-only. <see cref="Open"/> validates the whole header
/// before anything is used: every count, string and array lies inside the file (so a claimed count is never allocated
/// before the bytes it needs are known to exist), array nesting is bounded, and every tensor has a known type, a byte
/// length matching its type and shape, and an offset aligned to <c>general.alignment</c> inside the data section,
/// overlapping no other tensor.
/// </summary>
/// <remarks>
/// Layout: "GGUF", u32 version, u64 tensor count, u64 key/value count; key/values (u64-length UTF-8 key, u32 type, value);
/// tensor infos (name, u32 dimension count, u64 dimensions, u32 ggml type, u64 offset into the data section); padding to
/// the alignment; the data section.
/// </remarks>
internal sealed unsafe class GgufFile : IMappedModelFile
{
    /// <summary>"GGUF" read as a little-endian u32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>Alignment of the data section and of every tensor when <c>general.alignment</c> is absent.</summary>
    public const int DefaultAlignment = 32;

    /// <summary>ggml's GGML_MAX_DIMS.</summary>
    public const int MaxDimensions = 4;

    /// <summary>ggml's GGML_MAX_NAME less the terminator: longer tensor names cannot be loaded by ggml either.</summary>
    public const int MaxTensorNameBytes = 63;

    /// <summary>No real key comes close; the cap keeps a corrupt length from becoming a huge string.</summary>
    public const int MaxKeyBytes = 4096;

    /// <summary>Longest metadata string read (chat templates are kilobytes); the cap bounds the memory a corrupt length can ask for.</summary>
    public const int MaxStringBytes = 16 * 1024 * 1024;

    /// <summary>Arrays of arrays are walked recursively, so their depth is bounded.</summary>
    public const int MaxArrayDepth = 4;

    const int HeaderBytes = 4 + 4 + 8 + 8;

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    readonly MappedFile _file;
    readonly Dictionary<string, GgufValue> _metadata = new(StringComparer.Ordinal);
    readonly List<GgufTensor> _tensors = [];
    readonly byte* _start;
    readonly long _length;
    bool _disposed;

    GgufFile(MappedFile file)
    {
        _file = file;
        _start = file.Start;
        _length = file.Length;
    }

    /// <summary>Full path of the file.</summary>
    public string Path => _file.Path;

    /// <summary>The format version: 2 or 3.</summary>
    public uint Version { get; private set; }

    /// <summary>Alignment of the data section and tensor offsets.</summary>
    public int Alignment { get; private set; } = DefaultAlignment;

    /// <summary>Offset of the data section in the file.</summary>
    public long DataOffset { get; private set; }

    /// <summary>Metadata keys and their values.</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata => _metadata;

    /// <summary>Tensors in file order.</summary>
    public IReadOnlyList<GgufTensor> Tensors => _tensors;

    /// <summary>Maps and validates a GGUF file.</summary>
    /// <exception cref="ModelLoadException">The file cannot be read or is not a valid GGUF file; the message names the file and, where one is at fault, the key or tensor.</exception>
    public static GgufFile Open(string path)
    {
        var file = new GgufFile(MappedFile.Open(path, "GGUF file", HeaderBytes, $"{HeaderBytes}-byte header"));
        try
        {
            file._file.EnsureUnchanged();
            file.Parse();
            file._file.EnsureUnchanged();
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>First byte of the map (the fuzz target checks that every tensor lies inside it).</summary>
    internal byte* FileStart => _file.Start;

    /// <summary>The first byte of a tensor's data in the map; valid until <see cref="Dispose"/>.</summary>
    public byte* DataOf(in GgufTensor tensor)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _start + DataOffset + tensor.Offset;
    }

    /// <summary>See <see cref="MappedFile.EnsureUnchanged"/>.</summary>
    public void EnsureUnchanged() => _file.EnsureUnchanged();

    /// <summary>See <see cref="MappedFile.DropPages"/>.</summary>
    public bool DropPages(byte* start, long bytes) => _file.DropPages(start, bytes);

    /// <summary>A <see cref="ModelLoadException"/> about this file naming the key or tensor at fault.</summary>
    public ModelLoadException Error(string what, string? name = null, Exception? inner = null) =>
        new($"GGUF file '{Path}': {what}", Path, name, inner);

    void Parse()
    {
        long pos = 0;
        uint magic = ReadU32(ref pos, "the magic number");
        if (magic != Magic)
            throw Error($"bad magic 0x{magic:X8}: not a GGUF file (a GGUF file starts with the bytes 'GGUF')");

        uint version = ReadU32(ref pos, "the version");
        if (version is 2 or 3)
            Version = version;
        else if (BinaryPrimitives.ReverseEndianness(version) is 2 or 3)
            throw Error($"the file is big-endian (version {BinaryPrimitives.ReverseEndianness(version)}); only little-endian GGUF files are supported");
        else if (version == 1)
            throw Error("GGUF version 1 is not supported (only versions 2 and 3); convert the file again with a current llama.cpp");
        else
            throw Error($"unknown GGUF version {version} (only versions 2 and 3 are supported)");

        ulong tensorCount = ReadU64(ref pos, "the tensor count");
        ulong kvCount = ReadU64(ref pos, "the metadata count");
        // The smallest key/value is 13 bytes (empty key, type, one byte) and the smallest tensor info 32 (empty name,
        // one dimension), so counts the file cannot hold are refused before anything is allocated or walked.
        if (kvCount > (ulong)(_length - pos) / 13)
            throw Error($"metadata count {kvCount} cannot fit in the {_length} bytes of the file");
        if (tensorCount > (ulong)(_length - pos) / 32)
            throw Error($"tensor count {tensorCount} cannot fit in the {_length} bytes of the file");

        for (ulong i = 0; i < kvCount; i++)
        {
            string key = ReadString(ref pos, MaxKeyBytes, $"the key of metadata entry {i}", null);
            if (key.Length == 0)
                throw Error($"metadata entry {i} has an empty key");
            var type = (GgufValueType)ReadU32(ref pos, $"the type of metadata key '{key}'", key);
            GgufValue value = SkipValue(ref pos, type, key, depth: 0);
            if (!_metadata.TryAdd(key, value))
                throw Error($"metadata key '{key}' appears twice", key);
        }

        if (_metadata.TryGetValue("general.alignment", out GgufValue alignment))
        {
            if (alignment.Type != GgufValueType.UInt32)
                throw Error($"general.alignment is a {alignment.Type}, expected a UInt32", "general.alignment");
            uint a = BinaryPrimitives.ReadUInt32LittleEndian(Bytes(alignment.Offset, 4));
            if (a == 0 || (a & (a - 1)) != 0 || a > 1 << 20)
                throw Error($"general.alignment {a} is not a power of two between 1 and 2^20", "general.alignment");
            Alignment = (int)a;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
        {
            GgufTensor tensor = ReadTensorInfo(ref pos, i);
            if (!names.Add(tensor.Name))
                throw Error($"tensor '{tensor.Name}' appears twice", tensor.Name);
            _tensors.Add(tensor);
        }

        long dataOffset = AlignUp(pos, Alignment);
        if (dataOffset > _length && _tensors.Count > 0)
            throw Error($"the data section would start at byte {dataOffset}, past the end of the file ({_length} bytes): the file is truncated");
        DataOffset = dataOffset;
        CheckTensorRanges(Math.Max(0, _length - dataOffset));
    }

    GgufTensor ReadTensorInfo(ref long pos, ulong index)
    {
        string name = ReadString(ref pos, MaxTensorNameBytes, $"the name of tensor {index}", null);
        uint dimCount = ReadU32(ref pos, $"the dimension count of tensor '{name}'", name);
        if (dimCount is 0 or > MaxDimensions)
            throw Error($"tensor '{name}' has {dimCount} dimensions; ggml tensors have 1 to {MaxDimensions}", name);
        var dims = new long[dimCount];
        long elements = 1;
        for (int d = 0; d < dimCount; d++)
        {
            ulong size = ReadU64(ref pos, $"dimension {d} of tensor '{name}'", name);
            if (size > int.MaxValue)
                throw Error($"tensor '{name}' has dimension {d} of {size}, larger than {int.MaxValue}", name);
            dims[d] = (long)size;
            elements = elements == 0 || size == 0 ? 0 : elements <= long.MaxValue / (long)size
                ? elements * (long)size
                : throw Error($"tensor '{name}' has dimensions {FormatDims(dims)} whose element count overflows", name);
        }

        uint rawType = ReadU32(ref pos, $"the type of tensor '{name}'", name);
        var type = (GgmlType)rawType;
        if (!GgmlTypes.IsKnown(type))
            throw Error($"tensor '{name}' has unknown ggml type {rawType}", name);
        int block = GgmlTypes.BlockSize(type);
        if (dims[0] % block != 0)
            throw Error($"tensor '{name}' of type {type} has {dims[0]} values per row, not a multiple of its block of {block}", name);

        ulong offset = ReadU64(ref pos, $"the data offset of tensor '{name}'", name);
        long byteLength;
        try
        {
            byteLength = checked(elements / block * GgmlTypes.BytesPerBlock(type));
        }
        catch (OverflowException)
        {
            throw Error($"tensor '{name}' has dimensions {FormatDims(dims)} whose byte size overflows", name);
        }

        if (offset % (ulong)Alignment != 0)
            throw Error($"tensor '{name}' has data offset {offset}, not a multiple of the alignment {Alignment}", name);
        if (offset > long.MaxValue)
            throw Error($"tensor '{name}' has data offset {offset} past the end of the file", name);
        return new GgufTensor(name, type, dims, (long)offset, byteLength);
    }

    void CheckTensorRanges(long dataLength)
    {
        foreach (GgufTensor t in _tensors)
        {
            if (t.Offset > dataLength || t.ByteLength > dataLength - t.Offset)
                throw Error(
                    $"tensor '{t.Name}' ({t.Type}, dimensions {FormatDims(t.Dims)}) spans bytes [{t.Offset}, {t.Offset + t.ByteLength}) "
                    + $"of the data section, which has {dataLength} bytes: the file is truncated or corrupt",
                    t.Name);
        }

        // Sorting by (begin, end) puts an empty tensor before one starting at the same offset, so tensors that share a
        // begin only overlap when the first one has bytes.
        var ranges = _tensors.OrderBy(t => t.Offset).ThenBy(t => t.ByteLength).ToList();
        for (int i = 1; i < ranges.Count; i++)
        {
            GgufTensor prev = ranges[i - 1], cur = ranges[i];
            if (cur.Offset < prev.Offset + prev.ByteLength)
                throw Error(
                    $"tensors '{prev.Name}' [{prev.Offset}, {prev.Offset + prev.ByteLength}) and '{cur.Name}' "
                    + $"[{cur.Offset}, {cur.Offset + cur.ByteLength}) overlap",
                    cur.Name);
        }
    }

    GgufValue SkipValue(ref long pos, GgufValueType type, string key, int depth)
    {
        long start = pos;
        if (type == GgufValueType.Array)
        {
            if (depth >= MaxArrayDepth)
                throw Error($"metadata key '{key}' nests arrays deeper than {MaxArrayDepth} levels", key);
            var elementType = (GgufValueType)ReadU32(ref pos, $"the element type of metadata array '{key}'", key);
            ulong count = ReadU64(ref pos, $"the length of metadata array '{key}'", key);
            int minimum = MinimumSize(elementType, key);
            if (count > (ulong)(_length - pos) / (ulong)minimum)
                throw Error($"metadata array '{key}' claims {count} {elementType} elements, more than the {_length - pos} bytes left in the file can hold", key);
            long first = pos;
            if (FixedSize(elementType) is int size and > 0)
            {
                pos += (long)count * size;
            }
            else
            {
                for (ulong i = 0; i < count; i++)
                    SkipValue(ref pos, elementType, key, depth + 1);
            }

            return new GgufValue(type, first, elementType, (long)count);
        }

        if (type == GgufValueType.String)
        {
            ulong length = ReadU64(ref pos, $"the length of metadata string '{key}'", key);
            if (length > (ulong)(_length - pos))
                throw Error($"metadata string '{key}' claims {length} bytes, past the end of the file ({_length - pos} bytes left)", key);
            pos += (long)length;
            return new GgufValue(type, start, type, 1);
        }

        int fixedSize = FixedSize(type) ?? throw Error($"metadata key '{key}' has unknown value type {(uint)type}", key);
        Need(pos, fixedSize, $"the value of metadata key '{key}'", key);
        if (type == GgufValueType.Bool && _start[pos] > 1)
            throw Error($"metadata key '{key}' holds the bool byte {_start[pos]}, expected 0 or 1", key);
        pos += fixedSize;
        return new GgufValue(type, start, type, 1);
    }

    static int? FixedSize(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
        GgufValueType.String or GgufValueType.Array => 0,
        _ => null,
    };

    int MinimumSize(GgufValueType type, string key) => type switch
    {
        GgufValueType.String => 8,
        GgufValueType.Array => 12,
        _ => FixedSize(type) ?? throw Error($"metadata array '{key}' has unknown element type {(uint)type}", key),
    };

    // ---- typed access to metadata (all offsets were validated by Parse) ----

    /// <summary>Whether the key exists.</summary>
    public bool Has(string key) => _metadata.ContainsKey(key);

    /// <summary>A string value; null when the key is absent.</summary>
    public string? GetString(string key)
    {
        if (!_metadata.TryGetValue(key, out GgufValue v))
            return null;
        Expect(v, GgufValueType.String, key);
        long pos = v.Offset;
        return ReadString(ref pos, MaxStringBytes, $"metadata string '{key}'", key);
    }

    /// <summary>An integer value of any integer type; null when the key is absent.</summary>
    public long? GetInteger(string key)
    {
        if (!_metadata.TryGetValue(key, out GgufValue v))
            return null;
        if (v.Type is GgufValueType.Array or GgufValueType.String or GgufValueType.Float32 or GgufValueType.Float64 or GgufValueType.Bool)
            throw Error($"metadata key '{key}' is a {v.Type}, expected an integer", key);
        if (v.Type == GgufValueType.UInt64 && ReadU64At(v.Offset) > long.MaxValue)
            throw Error($"metadata key '{key}' holds {ReadU64At(v.Offset)}, out of range", key);
        return ReadIntegerAt(v.Type, v.Offset);
    }

    /// <summary>A Float32 or Float64 value; null when the key is absent.</summary>
    /// <remarks>A Float32 is widened through its shortest decimal form (1e-6f becomes 1e-6), the value the converter read from config.json.</remarks>
    public double? GetFloat(string key)
    {
        if (!_metadata.TryGetValue(key, out GgufValue v))
            return null;
        return v.Type switch
        {
            GgufValueType.Float32 => double.Parse(
                BinaryPrimitives.ReadSingleLittleEndian(Bytes(v.Offset, 4)).ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture),
            GgufValueType.Float64 => BinaryPrimitives.ReadDoubleLittleEndian(Bytes(v.Offset, 8)),
            _ => throw Error($"metadata key '{key}' is a {v.Type}, expected a float", key),
        };
    }

    /// <summary>A bool value; null when the key is absent.</summary>
    public bool? GetBool(string key)
    {
        if (!_metadata.TryGetValue(key, out GgufValue v))
            return null;
        Expect(v, GgufValueType.Bool, key);
        return _start[v.Offset] != 0;
    }

    /// <summary>An array of strings; null when the key is absent.</summary>
    public string[]? GetStringArray(string key)
    {
        if (!_metadata.TryGetValue(key, out GgufValue v))
            return null;
        ExpectArray(v, GgufValueType.String, key);
        var result = new string[v.Count];
        long pos = v.Offset;
        for (long i = 0; i < v.Count; i++)
            result[i] = ReadString(ref pos, MaxStringBytes, $"element {i} of metadata array '{key}'", key);
        return result;
    }

    /// <summary>An array of integers of any integer type, each within the 32-bit range; null when the key is absent.</summary>
    public int[]? GetInt32Array(string key)
    {
        if (!_metadata.TryGetValue(key, out GgufValue v))
            return null;
        if (v.Type != GgufValueType.Array || FixedSize(v.ElementType) is not int size || size == 0
            || v.ElementType is GgufValueType.Float32 or GgufValueType.Float64 or GgufValueType.Bool)
            throw Error($"metadata key '{key}' is not an array of integers", key);
        var result = new int[v.Count];
        for (long i = 0; i < v.Count; i++)
        {
            long value = v.ElementType == GgufValueType.UInt64 && ReadU64At(v.Offset + i * 8) > long.MaxValue
                ? long.MaxValue
                : ReadIntegerAt(v.ElementType, v.Offset + i * size);
            if (value is < int.MinValue or > int.MaxValue)
                throw Error($"element {i} of metadata array '{key}' is {value}, outside the 32-bit range", key);
            result[i] = (int)value;
        }

        return result;
    }

    void Expect(in GgufValue v, GgufValueType type, string key)
    {
        if (v.Type != type)
            throw Error($"metadata key '{key}' is a{(v.Type == GgufValueType.Array ? "n" : "")} {v.Type}, expected a {type}", key);
    }

    void ExpectArray(in GgufValue v, GgufValueType element, string key)
    {
        if (v.Type != GgufValueType.Array || v.ElementType != element)
            throw Error($"metadata key '{key}' is not an array of {element}", key);
    }

    long ReadIntegerAt(GgufValueType type, long offset) => type switch
    {
        GgufValueType.UInt8 => _start[offset],
        GgufValueType.Int8 => (sbyte)_start[offset],
        GgufValueType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(offset, 2)),
        GgufValueType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(Bytes(offset, 2)),
        GgufValueType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(offset, 4)),
        GgufValueType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(Bytes(offset, 4)),
        GgufValueType.UInt64 => (long)ReadU64At(offset),
        GgufValueType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(Bytes(offset, 8)),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    ulong ReadU64At(long offset) => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(offset, 8));

    // ---- bounds-checked cursor reads ----

    ReadOnlySpan<byte> Bytes(long offset, int count) => new(_start + offset, count);

    void Need(long pos, long count, string what, string? name)
    {
        if (count > _length - pos)
            throw Error($"the file ends ({_length} bytes) inside {what}: it is truncated", name);
    }

    uint ReadU32(ref long pos, string what, string? name = null)
    {
        Need(pos, 4, what, name);
        uint value = BinaryPrimitives.ReadUInt32LittleEndian(Bytes(pos, 4));
        pos += 4;
        return value;
    }

    ulong ReadU64(ref long pos, string what, string? name = null)
    {
        Need(pos, 8, what, name);
        ulong value = ReadU64At(pos);
        pos += 8;
        return value;
    }

    string ReadString(ref long pos, int maxBytes, string what, string? name)
    {
        ulong length = ReadU64(ref pos, $"the length of {what}", name);
        if (length > (ulong)(_length - pos))
            throw Error($"{what} claims {length} bytes, past the end of the file ({_length - pos} bytes left)", name);
        if (length > (ulong)maxBytes)
            throw Error($"{what} is {length} bytes long, more than the limit of {maxBytes}", name);
        string value;
        try
        {
            value = StrictUtf8.GetString(_start + pos, (int)length);
        }
        catch (DecoderFallbackException e)
        {
            throw Error($"{what} is not valid UTF-8", name, e);
        }

        pos += (long)length;
        return value;
    }

    static long AlignUp(long value, int alignment) => (value + alignment - 1) / alignment * alignment;

    /// <summary>ggml's dimensions in file order, such as <c>[1024, 151936]</c>.</summary>
    public static string FormatDims(IReadOnlyList<long> dims) =>
        "[" + string.Join(", ", dims.Select(d => d.ToString(CultureInfo.InvariantCulture))) + "]";

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _file.Dispose();
    }
}
