using System.Text;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Tests.Loading.Gguf;

/// <summary>
/// GGUF bytes put together field by field, so a test can write exactly the malformed value it is about (a count, a
/// length, an offset) where the library's writer would only write valid files.
/// </summary>
internal sealed class RawGguf
{
    private readonly MemoryStream _bytes = new();
    private readonly BinaryWriter _w;

    public RawGguf() => _w = new BinaryWriter(_bytes, Encoding.UTF8, leaveOpen: true);

    public long Length => _bytes.Length;

    public RawGguf Header(ulong tensors, ulong kvs, uint version = 3, uint magic = GgufFile.Magic)
    {
        _w.Write(magic);
        _w.Write(version);
        _w.Write(tensors);
        _w.Write(kvs);
        return this;
    }

    public RawGguf String(string value) => Bytes(Encoding.UTF8.GetBytes(value));

    public RawGguf Bytes(byte[] value)
    {
        _w.Write((ulong)value.Length);
        _w.Write(value);
        return this;
    }

    public RawGguf U32(uint value)
    {
        _w.Write(value);
        return this;
    }

    public RawGguf Byte(byte value)
    {
        _w.Write(value);
        return this;
    }

    public RawGguf U64(ulong value)
    {
        _w.Write(value);
        return this;
    }

    public RawGguf KeyString(string key, string value) => String(key).U32((uint)GgufValueType.String).String(value);

    public RawGguf KeyU32(string key, uint value) => String(key).U32((uint)GgufValueType.UInt32).U32(value);

    /// <summary>An array header: the caller writes the elements.</summary>
    public RawGguf KeyArray(string key, GgufValueType element, ulong count) => String(key).U32((uint)GgufValueType.Array).U32((uint)element).U64(count);

    public RawGguf Tensor(string name, long[] dims, GgmlType type, ulong offset)
    {
        String(name).U32((uint)dims.Length);
        foreach (long d in dims)
        {
            _w.Write((ulong)d);
        }

        return U32((uint)type).U64(offset);
    }

    /// <summary>Zeros up to the next multiple of <paramref name="alignment"/>.</summary>
    public RawGguf Pad(int alignment = GgufFile.DefaultAlignment)
    {
        while (_bytes.Length % alignment != 0)
        {
            _w.Write((byte)0);
        }

        return this;
    }

    public RawGguf Zeros(int count)
    {
        _w.Write(new byte[count]);
        return this;
    }

    public byte[] ToArray()
    {
        _w.Flush();
        return _bytes.ToArray();
    }
}
