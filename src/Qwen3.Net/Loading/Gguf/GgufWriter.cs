using System.Text;

namespace Qwen3.Net.Loading.Gguf;

/// <summary>
/// Writes a GGUF v3 file: magic, version, tensor and key/value counts, typed key/values, tensor infos (dimensions
/// innermost first, as ggml's <c>ne</c>), then the tensor data, each tensor starting on a 32-byte boundary.
/// Metadata is buffered (it is a few megabytes at most) and can be removed again before writing, so tests derive
/// malformed files from a valid one; tensor data is streamed by callbacks.
/// </summary>
internal sealed class GgufWriter
{
    private const uint Version = 3;
    public const int Alignment = GgufFile.DefaultAlignment;

    private sealed record TensorEntry(string Name, long[] Dims, GgmlType Type, long ByteSize, Action<Stream> WriteData);

    // Each key's bytes from its name to the end of its value, in the order added.
    private readonly List<(string Key, byte[] Bytes)> _entries = [];
    private readonly List<TensorEntry> _tensors = [];
    private MemoryStream _kvBytes = new();
    private BinaryWriter _kv = BinaryWriter.Null;
    private string? _openKey;

    /// <summary>Removes a key added before; false when there is none.</summary>
    public bool Remove(string key)
    {
        CloseKey();
        return _entries.RemoveAll(e => e.Key == key) > 0;
    }

    /// <summary>Removes a tensor added before; false when there is none.</summary>
    public bool RemoveTensor(string name) => _tensors.RemoveAll(t => t.Name == name) > 0;

    public void AddString(string key, string value)
    {
        BeginKey(key, GgufValueType.String);
        WriteString(_kv, value);
    }

    public void AddUInt32(string key, uint value)
    {
        BeginKey(key, GgufValueType.UInt32);
        _kv.Write(value);
    }

    public void AddFloat32(string key, float value)
    {
        BeginKey(key, GgufValueType.Float32);
        _kv.Write(value);
    }

    public void AddBool(string key, bool value)
    {
        BeginKey(key, GgufValueType.Bool);
        _kv.Write((byte)(value ? 1 : 0));
    }

    public void AddStringArray(string key, IReadOnlyList<string> values)
    {
        BeginKey(key, GgufValueType.Array);
        _kv.Write((uint)GgufValueType.String);
        _kv.Write((ulong)values.Count);
        foreach (string value in values)
        {
            WriteString(_kv, value);
        }
    }

    public void AddInt32Array(string key, IReadOnlyList<int> values)
    {
        BeginKey(key, GgufValueType.Array);
        _kv.Write((uint)GgufValueType.Int32);
        _kv.Write((ulong)values.Count);
        foreach (int value in values)
        {
            _kv.Write(value);
        }
    }

    /// <param name="name">The tensor's name.</param>
    /// <param name="dims">ggml order: <c>dims[0]</c> is the innermost (contiguous) dimension.</param>
    /// <param name="type">The element type.</param>
    /// <param name="byteSize">Bytes of the data.</param>
    /// <param name="writeData">Must write exactly <paramref name="byteSize"/> bytes.</param>
    public void AddTensor(string name, long[] dims, GgmlType type, long byteSize, Action<Stream> writeData)
    {
        if (_tensors.Any(t => t.Name == name))
        {
            throw new ArgumentException($"Tensor '{name}' added twice.", nameof(name));
        }
        _tensors.Add(new TensorEntry(name, dims, type, byteSize, writeData));
    }

    public void WriteTo(string path)
    {
        using var file = new ChunkedFileStream(path);
        using var header = new BinaryWriter(file, Encoding.UTF8, leaveOpen: true);
        header.Write(GgufFile.Magic);
        header.Write(Version);
        header.Write((ulong)_tensors.Count);
        CloseKey();
        header.Write((ulong)_entries.Count);
        foreach ((_, byte[] bytes) in _entries)
        {
            header.Write(bytes);
        }

        long offset = 0;
        foreach (var tensor in _tensors)
        {
            WriteString(header, tensor.Name);
            header.Write((uint)tensor.Dims.Length);
            foreach (long dim in tensor.Dims)
            {
                header.Write((ulong)dim);
            }
            header.Write((uint)tensor.Type);
            header.Write((ulong)offset);
            offset = AlignUp(offset + tensor.ByteSize);
        }
        header.Flush();
        Pad(file);

        long dataStart = file.Position;
        foreach (var tensor in _tensors)
        {
            long before = file.Position;
            tensor.WriteData(file);
            if (file.Position - before != tensor.ByteSize)
            {
                throw new InvalidOperationException(
                    $"Tensor '{tensor.Name}' wrote {file.Position - before} bytes, declared {tensor.ByteSize}.");
            }
            Pad(file);
        }
        if (file.Position - dataStart != offset)
        {
            throw new InvalidOperationException("GGUF data section does not match the declared tensor offsets.");
        }
    }

    private void BeginKey(string key, GgufValueType type)
    {
        CloseKey();
        if (_entries.Any(e => e.Key == key))
        {
            throw new ArgumentException($"Metadata key '{key}' added twice.", nameof(key));
        }
        _openKey = key;
        _kvBytes = new MemoryStream();
        _kv = new BinaryWriter(_kvBytes, Encoding.UTF8, leaveOpen: true);
        WriteString(_kv, key);
        _kv.Write((uint)type);
    }

    private void CloseKey()
    {
        if (_openKey is null)
        {
            return;
        }
        _kv.Flush();
        _entries.Add((_openKey, _kvBytes.ToArray()));
        _openKey = null;
    }

    // gguf_string: u64 byte length, then UTF-8 bytes without a terminator.
    private static void WriteString(BinaryWriter writer, string value)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(value);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }

    private static long AlignUp(long value) => (value + Alignment - 1) / Alignment * Alignment;

    private static void Pad(Stream stream)
    {
        long padding = AlignUp(stream.Position) - stream.Position;
        for (long i = 0; i < padding; i++)
        {
            stream.WriteByte(0);
        }
    }
}
