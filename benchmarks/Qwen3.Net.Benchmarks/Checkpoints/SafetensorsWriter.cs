using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Qwen3.Net.Loading;

namespace Qwen3.Net.Benchmarks.Checkpoints;

/// <summary>
/// Writes one safetensors file of BF16 tensors: a u64 little-endian header length, a JSON header mapping each name to
/// its dtype, shape and byte range, then the raw data. Layout choices follow the reference serializer:
/// <c>__metadata__</c> first, tensors in name order, header padded with spaces to 8 bytes so the data is aligned.
/// </summary>
public static class SafetensorsWriter
{
    public static void Write(string path, IEnumerable<CheckpointTensor> tensors, ChunkedTensorWriter data)
    {
        var ordered = tensors.OrderBy(t => t.HfName, StringComparer.Ordinal).ToList();
        byte[] header = BuildHeader(ordered);

        using var file = new ChunkedFileStream(path);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        file.Write(length);
        file.Write(header);
        foreach (var tensor in ordered)
        {
            data.WriteBf16(file, tensor);
        }
    }

    private static byte[] BuildHeader(IReadOnlyList<CheckpointTensor> ordered)
    {
        using var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("__metadata__");
            writer.WriteString("format", "pt");
            writer.WriteEndObject();
            long offset = 0;
            foreach (var tensor in ordered)
            {
                long size = ChunkedTensorWriter.Bf16ByteCount(tensor);
                writer.WriteStartObject(tensor.HfName);
                writer.WriteString("dtype", "BF16");
                writer.WriteStartArray("shape");
                foreach (long dim in tensor.Shape)
                {
                    writer.WriteNumberValue(dim);
                }
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + size);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += size;
            }
            writer.WriteEndObject();
        }

        int padded = (int)((json.Length + 7) / 8 * 8);
        var header = new byte[padded];
        json.ToArray().CopyTo(header, 0);
        header.AsSpan((int)json.Length).Fill((byte)' ');
        return header;
    }

    /// <summary>The <c>model.safetensors.index.json</c> that tells loaders which shard holds each tensor.</summary>
    public static void WriteIndex(string path, long totalSize, IEnumerable<(string Tensor, string File)> weightMap)
    {
        using var file = File.Create(path);
        using var writer = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = true });
        writer.WriteStartObject();
        writer.WriteStartObject("metadata");
        writer.WriteNumber("total_size", totalSize);
        writer.WriteEndObject();
        writer.WriteStartObject("weight_map");
        foreach (var (tensor, shard) in weightMap.OrderBy(e => e.Tensor, StringComparer.Ordinal))
        {
            writer.WriteString(tensor, shard);
        }
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.Flush();
        file.Write(Encoding.UTF8.GetBytes("\n"));
    }
}
