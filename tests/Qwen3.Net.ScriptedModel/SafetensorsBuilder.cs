using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace Qwen3.Net.ScriptedModel;

/// <summary>
/// Writes safetensors files for tests: well-formed ones (tensors laid out back to back) and, through
/// <see cref="AddWithOffsets"/> and <see cref="FromHeader"/>, deliberately corrupt ones.
/// </summary>
internal sealed class SafetensorsBuilder
{
    readonly List<(string Name, string DType, long[] Shape, long Begin, long End, byte[]? Bytes)> _entries = [];
    long _next;

    public static int ElementSize(string dtype) => dtype switch
    {
        "F32" or "I32" => 4,
        "F16" or "BF16" or "I16" => 2,
        "F64" or "I64" => 8,
        _ => 1,
    };

    /// <summary>A tensor placed right after the previous one; bytes default to a recognisable pattern.</summary>
    public SafetensorsBuilder Add(string name, string dtype, int[] shape, byte[]? bytes = null)
    {
        long length = shape.Aggregate(1L, (a, b) => a * b) * ElementSize(dtype);
        bytes ??= Enumerable.Range(0, (int)length).Select(i => (byte)(i * 7 + name.Length)).ToArray();
        if (bytes.Length != length)
            throw new ArgumentException("byte count does not match shape", nameof(bytes));
        _entries.Add((name, dtype, shape.Select(s => (long)s).ToArray(), _next, _next + length, bytes));
        _next += length;
        return this;
    }

    public SafetensorsBuilder AddF32(string name, int[] shape, params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return Add(name, "F32", shape, bytes);
    }

    public SafetensorsBuilder AddF16(string name, int[] shape, params float[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(i * 2), (Half)values[i]);
        return Add(name, "F16", shape, bytes);
    }

    /// <summary>BF16 rounded to nearest even, as torch converts; values exactly representable in BF16 are kept as they are.</summary>
    public SafetensorsBuilder AddBF16(string name, int[] shape, params float[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
        {
            uint bits = BitConverter.SingleToUInt32Bits(values[i]);
            ushort rounded = (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), rounded);
        }
        return Add(name, "BF16", shape, bytes);
    }

    /// <summary>A header entry with arbitrary offsets; the data section grows to cover them unless they are absurd.</summary>
    public SafetensorsBuilder AddWithOffsets(string name, string dtype, long[] shape, long begin, long end)
    {
        _entries.Add((name, dtype, shape, begin, end, null));
        return this;
    }

    /// <summary>Data section length; defaults to the end of the last tensor.</summary>
    public long? DataLength { get; set; }

    public string HeaderJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WritePropertyName("__metadata__");
            w.WriteStartObject();
            w.WriteString("format", "pt");
            w.WriteEndObject();
            foreach (var e in _entries)
            {
                w.WritePropertyName(e.Name);
                w.WriteStartObject();
                w.WriteString("dtype", e.DType);
                w.WritePropertyName("shape");
                w.WriteStartArray();
                foreach (long s in e.Shape)
                    w.WriteNumberValue(s);
                w.WriteEndArray();
                w.WritePropertyName("data_offsets");
                w.WriteStartArray();
                w.WriteNumberValue(e.Begin);
                w.WriteNumberValue(e.End);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    public byte[] Build()
    {
        long dataLength = DataLength ?? (_entries.Count == 0 ? 0 : _entries.Max(e => e.Bytes is null ? Math.Min(e.End, 1 << 20) : e.End));
        var data = new byte[dataLength];
        foreach (var e in _entries)
            if (e.Bytes is not null)
                e.Bytes.CopyTo(data, e.Begin);
        return FromHeader(HeaderJson(), data);
    }

    public string WriteTo(string path)
    {
        File.WriteAllBytes(path, Build());
        return path;
    }

    /// <summary>A file from a raw header text (padded with spaces to a multiple of 8, as the writers do) and data.</summary>
    public static byte[] FromHeader(string headerJson, byte[] data)
    {
        byte[] header = Encoding.UTF8.GetBytes(headerJson);
        int padded = (header.Length + 7) / 8 * 8;
        var file = new byte[8 + padded + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)padded);
        header.CopyTo(file, 8);
        file.AsSpan(8 + header.Length, padded - header.Length).Fill((byte)' ');
        data.CopyTo(file, 8 + padded);
        return file;
    }
}
