using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using System.Text.Unicode;

namespace Qwen3.Net.Loading;

/// <summary>
/// One safetensors file, memory-mapped read-only. The whole header is validated (types, shapes, offsets inside the data
/// section and not overlapping) before any <see cref="TensorView"/> is made, so a view never points outside the map.
/// Format: u64 little-endian header length N, N bytes of UTF-8 JSON, then the data section that offsets refer to.
/// </summary>
internal sealed unsafe class SafetensorsFile : IMappedModelFile
{
    // Real headers are a few hundred KB even for 32B shards; the cap stops a corrupt length from making us read
    // (and JSON-parse) gigabytes of tensor data as text.
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    readonly MappedFile _file;
    readonly Dictionary<string, TensorView> _tensors;
    bool _disposed;

    SafetensorsFile(MappedFile file)
    {
        _file = file;
        _tensors = new Dictionary<string, TensorView>(StringComparer.Ordinal);
    }

    /// <summary>Full path of the file.</summary>
    public string Path => _file.Path;

    /// <summary>Length of the file in bytes when it was mapped: exactly the bytes the map covers.</summary>
    public long FileLength => _file.Length;

    /// <summary>First byte of the map (the fuzz targets check that every view lies inside it).</summary>
    internal byte* FileStart => _file.Start;

    /// <summary>Every tensor of the file by name (the <c>__metadata__</c> entry is not a tensor).</summary>
    public IReadOnlyDictionary<string, TensorView> Tensors
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _tensors;
        }
    }

    /// <summary>Maps the file and validates its header; see <see cref="Map"/> and <see cref="Validate"/>.</summary>
    public static SafetensorsFile Open(string path)
    {
        SafetensorsFile file = Map(path);
        try
        {
            file.Validate();
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens and maps the file (see <see cref="MappedFile.Open"/>). Reads nothing: <see cref="Validate"/> must pass
    /// before any tensor is used.
    /// </summary>
    internal static SafetensorsFile Map(string path) =>
        new(MappedFile.Open(path, "safetensors file", 8, "8-byte header length"));

    /// <summary>
    /// Validates the header against the mapped length and builds the tensor views. A file cut short after mapping
    /// would fault the process (SIGBUS) on the first read past its new end, so the length is checked through the
    /// handle before the header is read, and again once it is validated.
    /// </summary>
    internal void Validate()
    {
        EnsureUnchanged();
        ParseHeader(_file.Start, FileLength);
        EnsureUnchanged();
    }

    /// <summary>See <see cref="MappedFile.EnsureUnchanged"/>.</summary>
    public void EnsureUnchanged()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _file.EnsureUnchanged();
    }

    /// <summary>See <see cref="MappedFile.DropPages"/>.</summary>
    public bool DropPages(byte* start, long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _file.DropPages(start, bytes);
    }

    void ParseHeader(byte* fileStart, long fileLength)
    {
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(fileStart, 8));
        if (headerLength > (ulong)(fileLength - 8))
            throw Error($"header length {headerLength} runs past the end of the file ({fileLength} bytes; at most {fileLength - 8} bytes of header fit): the file is truncated or corrupt");
        if (headerLength > MaxHeaderBytes)
            throw Error($"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
        if (headerLength < 2)
            throw Error($"header length {headerLength} is too short for a JSON object");

        var header = new ReadOnlySpan<byte>(fileStart + 8, (int)headerLength);
        if (!Utf8.IsValid(header))
            throw Error("header is not valid UTF-8");

        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;
        byte* data = fileStart + dataStart;

        JsonDocument doc;
        try
        {
            // The format allows trailing spaces after the JSON object as padding; the parser accepts whitespace.
            doc = JsonDocument.Parse(header.ToArray());
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"header of safetensors file '{Path}' is not valid JSON: {e.Message}", Path, inner: e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Error($"header must be a JSON object, found {doc.RootElement.ValueKind}");

            var ranges = new List<(long Begin, long End, string Name)>();
            foreach (JsonProperty entry in doc.RootElement.EnumerateObject())
            {
                string name = entry.Name;
                if (name == "__metadata__")
                    continue;
                if (_tensors.ContainsKey(name))
                    throw Error($"tensor '{name}' appears twice in the header", name);

                TensorView view = ParseEntry(name, entry.Value, data, dataLength);
                _tensors.Add(name, view);
                ranges.Add((view.Data - data, view.Data - data + view.ByteLength, name));
            }

            // Sorting by (begin, end) puts an empty tensor before a tensor starting at the same offset, so two tensors
            // that share a begin only "overlap" when the first one actually has bytes.
            ranges.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            for (int i = 1; i < ranges.Count; i++)
            {
                var prev = ranges[i - 1];
                var cur = ranges[i];
                if (cur.Begin < prev.End)
                    throw Error(
                        $"tensors '{prev.Name}' [{prev.Begin}, {prev.End}) and '{cur.Name}' [{cur.Begin}, {cur.End}) overlap",
                        cur.Name);
            }

            // The format (and the reference reader) requires the last tensor to end where the file does: bytes beyond it
            // mean the file is not the one its header describes.
            long described = ranges.Count == 0 ? 0 : ranges.Max(r => r.End);
            if (described != dataLength)
                throw Error(
                    $"the file has {fileLength} bytes but its header describes {dataStart + described} "
                    + $"({dataLength - described} bytes after the last tensor's data)");
        }
    }

    TensorView ParseEntry(string name, JsonElement e, byte* data, long dataLength)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw Error($"header entry of tensor '{name}' must be an object, found {e.ValueKind}", name);

        if (!e.TryGetProperty("dtype", out JsonElement dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
            throw Error($"tensor '{name}' has no string 'dtype'", name);
        string dtypeName = dtypeEl.GetString()!;
        TensorDType dtype = dtypeName switch
        {
            "F32" => TensorDType.F32,
            "F16" => TensorDType.F16,
            "BF16" => TensorDType.BF16,
            _ => throw Error($"unsupported dtype {dtypeName} of tensor {name} (supported: BF16, F16, F32)", name),
        };

        if (!e.TryGetProperty("shape", out JsonElement shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw Error($"tensor '{name}' has no 'shape' array", name);
        var shape = new int[shapeEl.GetArrayLength()];
        long elements = 1;
        int d = 0;
        foreach (JsonElement dim in shapeEl.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long size) || size < 0)
                throw Error($"tensor '{name}' has an invalid shape {shapeEl.GetRawText()}: dimensions must be non-negative integers", name);
            if (size > int.MaxValue)
                throw Error($"tensor '{name}' has dimension {size}, larger than {int.MaxValue}", name);
            shape[d++] = (int)size;
            try
            {
                elements = checked(elements * size);
            }
            catch (OverflowException)
            {
                throw Error($"tensor '{name}' has shape {shapeEl.GetRawText()} whose element count overflows", name);
            }
        }

        if (!e.TryGetProperty("data_offsets", out JsonElement offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw Error($"tensor '{name}' must have 'data_offsets' [begin, end]", name);
        JsonElement beginEl = offEl[0], endEl = offEl[1];
        if (beginEl.ValueKind != JsonValueKind.Number || !beginEl.TryGetInt64(out long begin)
            || endEl.ValueKind != JsonValueKind.Number || !endEl.TryGetInt64(out long end))
            throw Error($"tensor '{name}' has non-integer data_offsets {offEl.GetRawText()}", name);
        if (begin < 0 || begin > end || end > dataLength)
            throw Error($"tensor '{name}' has data_offsets [{begin}, {end}] outside the data section of {dataLength} bytes", name);

        int elementSize = TensorView.ElementSize(dtype);
        long expectedBytes;
        try
        {
            expectedBytes = checked(elements * elementSize);
        }
        catch (OverflowException)
        {
            throw Error($"tensor '{name}' has shape {shapeEl.GetRawText()} whose byte size overflows", name);
        }
        if (end - begin != expectedBytes)
            throw Error(
                $"tensor '{name}' spans {end - begin} bytes but shape {FormatShape(shape)} of {dtypeName} needs {expectedBytes} bytes",
                name);

        return new TensorView(name, dtype, shape, data + begin, expectedBytes, Path);
    }

    ModelLoadException Error(string what, string? tensorName = null)
        => new($"safetensors file '{Path}': {what}", Path, tensorName);

    public static string FormatShape(IReadOnlyList<int> shape)
        => "[" + string.Join(", ", shape.Select(s => s.ToString(CultureInfo.InvariantCulture))) + "]";

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _file.Dispose();
    }
}
