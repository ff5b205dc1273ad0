using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Qwen3.Net.Benchmarks.Checkpoints;

/// <summary>
/// Reads the BF16 tensors of an existing Hugging Face folder (single <c>model.safetensors</c> or sharded with an
/// index), so a real or fixture checkpoint can be converted to GGUF through the same writer as synthetic weights.
/// </summary>
public sealed class SafetensorsCheckpoint : IWeightSource, IDisposable
{
    private sealed record Entry(MemoryMappedViewAccessor View, long DataOffset, long ByteLength);

    private readonly List<MemoryMappedFile> _files = [];
    private readonly List<MemoryMappedViewAccessor> _views = [];
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public SafetensorsCheckpoint(string folder)
    {
        string index = Path.Combine(folder, "model.safetensors.index.json");
        IEnumerable<string> shards = File.Exists(index)
            ? ReadShardNames(index).Select(name => Path.Combine(folder, name))
            : [Path.Combine(folder, "model.safetensors")];
        foreach (string shard in shards)
        {
            Open(shard);
        }
    }

    public void ReadBf16(CheckpointTensor tensor, long start, Span<ushort> destination)
    {
        if (!_entries.TryGetValue(tensor.HfName, out var entry))
        {
            throw new KeyNotFoundException($"Tensor '{tensor.HfName}' is not in the checkpoint.");
        }
        if (entry.ByteLength != tensor.ElementCount * sizeof(ushort))
        {
            throw new InvalidDataException($"Tensor '{tensor.HfName}' has {entry.ByteLength} bytes, expected BF16 {string.Join('x', tensor.Shape)}.");
        }
        var bytes = MemoryMarshal.AsBytes(destination);
        unsafe
        {
            byte* basePtr = null;
            entry.View.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            try
            {
                new ReadOnlySpan<byte>(basePtr + entry.View.PointerOffset + entry.DataOffset + start * sizeof(ushort), bytes.Length)
                    .CopyTo(bytes);
            }
            finally
            {
                entry.View.SafeMemoryMappedViewHandle.ReleasePointer();
            }
        }
    }

    public void Dispose()
    {
        foreach (var view in _views)
        {
            view.Dispose();
        }
        foreach (var file in _files)
        {
            file.Dispose();
        }
    }

    private static IEnumerable<string> ReadShardNames(string indexPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        return doc.RootElement.GetProperty("weight_map").EnumerateObject()
            .Select(p => p.Value.GetString()!)
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    private void Open(string path)
    {
        var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        _files.Add(file);
        _views.Add(view);

        Span<byte> lengthBytes = stackalloc byte[8];
        using (var stream = File.OpenRead(path))
        {
            stream.ReadExactly(lengthBytes);
            long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            var header = new byte[headerLength];
            stream.ReadExactly(header);
            using var doc = JsonDocument.Parse(header);
            foreach (var tensor in doc.RootElement.EnumerateObject())
            {
                if (tensor.Name == "__metadata__")
                {
                    continue;
                }
                if (tensor.Value.GetProperty("dtype").GetString() != "BF16")
                {
                    throw new InvalidDataException($"{path}: tensor '{tensor.Name}' is not BF16.");
                }
                var offsets = tensor.Value.GetProperty("data_offsets");
                long begin = offsets[0].GetInt64();
                long end = offsets[1].GetInt64();
                _entries[tensor.Name] = new Entry(view, 8 + headerLength + begin, end - begin);
            }
        }
    }
}
