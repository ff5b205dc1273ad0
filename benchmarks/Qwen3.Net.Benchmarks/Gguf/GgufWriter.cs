using System.Text;

namespace Qwen3.Net.Benchmarks.Gguf;

/// <summary>ggml tensor element types used here (values of <c>enum ggml_type</c>).</summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    BF16 = 30,
}

/// <summary>
/// Writes a GGUF v3 file: magic, version, tensor and key/value counts, typed key/values, tensor infos (dimensions
/// innermost first, as ggml's <c>ne</c>), then the tensor data, each tensor starting on a 32-byte boundary.
/// Metadata is buffered (it is a few megabytes at most); tensor data is streamed by callbacks.
/// </summary>
public sealed class GgufWriter
{
    private const uint Magic = 0x46554747; // "GGUF" read as a little-endian u32
    private const uint Version = 3;
    public const int Alignment = 32;

    // Values of enum gguf_type.
    private enum ValueType : uint
    {
        UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
        String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
    }

    private sealed record TensorEntry(string Name, long[] Dims, GgmlType Type, long ByteSize, Action<Stream> WriteData);

    private readonly MemoryStream _kvBytes = new();
    private readonly BinaryWriter _kv;
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly List<TensorEntry> _tensors = [];

    public GgufWriter() => _kv = new BinaryWriter(_kvBytes, Encoding.UTF8, leaveOpen: true);

    public void AddString(string key, string value)
    {
        BeginKey(key, ValueType.String);
        WriteString(_kv, value);
    }

    public void AddUInt32(string key, uint value)
    {
        BeginKey(key, ValueType.UInt32);
        _kv.Write(value);
    }

    public void AddFloat32(string key, float value)
    {
        BeginKey(key, ValueType.Float32);
        _kv.Write(value);
    }

    public void AddBool(string key, bool value)
    {
        BeginKey(key, ValueType.Bool);
        _kv.Write((byte)(value ? 1 : 0));
    }

    public void AddStringArray(string key, IReadOnlyList<string> values)
    {
        BeginKey(key, ValueType.Array);
        _kv.Write((uint)ValueType.String);
        _kv.Write((ulong)values.Count);
        foreach (string value in values)
        {
            WriteString(_kv, value);
        }
    }

    public void AddInt32Array(string key, IReadOnlyList<int> values)
    {
        BeginKey(key, ValueType.Array);
        _kv.Write((uint)ValueType.Int32);
        _kv.Write((ulong)values.Count);
        foreach (int value in values)
        {
            _kv.Write(value);
        }
    }

    /// <param name="dims">ggml order: <c>dims[0]</c> is the innermost (contiguous) dimension.</param>
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
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var header = new BinaryWriter(file, Encoding.UTF8, leaveOpen: true);
        header.Write(Magic);
        header.Write(Version);
        header.Write((ulong)_tensors.Count);
        header.Write((ulong)_keys.Count);
        _kv.Flush();
        header.Write(_kvBytes.GetBuffer(), 0, (int)_kvBytes.Length);

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

    private void BeginKey(string key, ValueType type)
    {
        if (!_keys.Add(key))
        {
            throw new ArgumentException($"Metadata key '{key}' added twice.", nameof(key));
        }
        WriteString(_kv, key);
        _kv.Write((uint)type);
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
