using System.Text.Json;
using System.Text.Unicode;

namespace Qwen3.Net.Loading;

/// <summary>
/// All tensors of a model folder: either <c>model.safetensors</c>, or the shards named by
/// <c>model.safetensors.index.json</c>. Owns the memory maps; every <see cref="TensorView"/> it hands out is valid
/// until <see cref="Dispose"/>.
/// </summary>
internal sealed class TensorStore : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    readonly IReadOnlyList<IMappedModelFile> _files;
    readonly Dictionary<string, TensorView> _tensors;
    // Where a missing tensor was looked for: the index file, model.safetensors or the GGUF file.
    readonly string _sourcePath;
    // The name a tensor has in the file, for messages (GGUF names differ from the checkpoint names used as keys).
    readonly Func<string, string> _fileNameOf;
    bool _disposed;

    TensorStore(string folder, string sourcePath, IReadOnlyList<IMappedModelFile> files, Dictionary<string, TensorView> tensors,
        Func<string, string>? fileNameOf = null)
    {
        Folder = folder;
        _sourcePath = sourcePath;
        _files = files;
        _tensors = tensors;
        _fileNameOf = fileNameOf ?? (name => name);
        long total = 0;
        foreach (TensorView t in tensors.Values)
            total += t.ByteLength;
        TotalBytes = total;
    }

    /// <summary>Full path of the model folder.</summary>
    public string Folder { get; }

    /// <summary>Names of all tensors the store resolves.</summary>
    public IReadOnlyCollection<string> TensorNames => _tensors.Keys;

    /// <summary>Sum of the byte lengths of all tensors.</summary>
    public long TotalBytes { get; }

    /// <summary>The safetensors files that are mapped (one, or each distinct shard).</summary>
    public IReadOnlyList<string> FilePaths => _files.Select(f => f.Path).ToList();

    /// <summary>
    /// The tensors of a validated GGUF file, keyed by their checkpoint names; messages name them as the file does.
    /// Takes ownership of <paramref name="file"/>.
    /// </summary>
    /// <param name="file">The validated GGUF file.</param>
    /// <param name="tensors">Views keyed by checkpoint name (see <see cref="Gguf.GgufTensorNames"/>).</param>
    /// <param name="fileNameOf">The GGUF name of a checkpoint name.</param>
    internal static TensorStore FromGguf(Gguf.GgufFile file, Dictionary<string, TensorView> tensors, Func<string, string> fileNameOf) =>
        new(Path.GetDirectoryName(file.Path)!, file.Path, [file], tensors, fileNameOf);

    public static TensorStore Open(string modelFolder)
    {
        ArgumentNullException.ThrowIfNull(modelFolder);
        string folder = Path.GetFullPath(modelFolder);
        if (!Directory.Exists(folder))
            throw new ModelLoadException($"model folder '{folder}' does not exist", folder);

        string indexPath = Path.Combine(folder, IndexFileName);
        if (File.Exists(indexPath))
            return OpenSharded(folder, indexPath);

        string singlePath = Path.Combine(folder, SingleFileName);
        if (File.Exists(singlePath))
        {
            SafetensorsFile file = SafetensorsFile.Open(singlePath);
            var tensors = new Dictionary<string, TensorView>(file.Tensors, StringComparer.Ordinal);
            return new TensorStore(folder, singlePath, [file], tensors);
        }

        throw new ModelLoadException($"no {SingleFileName} or {IndexFileName} in folder '{folder}'", folder);
    }

    static TensorStore OpenSharded(string folder, string indexPath)
    {
        // tensor name → shard file name, in index order (SortedDictionary keeps error messages deterministic).
        SortedDictionary<string, string> weightMap = ReadWeightMap(indexPath);

        var files = new List<SafetensorsFile>();
        try
        {
            var shards = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            var tensors = new Dictionary<string, TensorView>(StringComparer.Ordinal);
            foreach ((string tensor, string shardName) in weightMap)
            {
                if (!shards.TryGetValue(shardName, out SafetensorsFile? shard))
                {
                    string shardPath = Path.Combine(folder, shardName);
                    if (!File.Exists(shardPath))
                        throw new ModelLoadException(
                            $"shard '{shardName}' named in '{indexPath}' (for tensor '{tensor}') does not exist: '{shardPath}'",
                            shardPath, tensor);
                    shard = SafetensorsFile.Open(shardPath);
                    files.Add(shard);
                    shards.Add(shardName, shard);
                }

                // Only the index decides where a tensor lives; a stray copy of it in another shard is never used.
                if (!shard.Tensors.TryGetValue(tensor, out TensorView view))
                    throw new ModelLoadException(
                        $"tensor '{tensor}' is mapped to shard '{shard.Path}' by '{indexPath}' but that shard does not contain it",
                        shard.Path, tensor);
                tensors.Add(tensor, view);
            }
            var store = new TensorStore(folder, indexPath, files, tensors);
            // A shard validated first may have been cut short while the later ones were mapped.
            store.EnsureUnchanged();
            return store;
        }
        catch
        {
            foreach (SafetensorsFile f in files)
                f.Dispose();
            throw;
        }
    }

    static SortedDictionary<string, string> ReadWeightMap(string indexPath)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(indexPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"cannot read '{indexPath}': {e.Message}", indexPath, inner: e);
        }

        // JsonDocument checks the UTF-8 of names and strings only when they are read, and then throws InvalidOperationException.
        if (!Utf8.IsValid(bytes))
            throw new ModelLoadException($"'{indexPath}' is not valid UTF-8", indexPath);

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw new ModelLoadException($"'{indexPath}' is not valid JSON: {e.Message}", indexPath, inner: e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out JsonElement map)
                || map.ValueKind != JsonValueKind.Object)
                throw new ModelLoadException($"'{indexPath}' has no 'weight_map' object", indexPath);

            var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty p in map.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new ModelLoadException(
                        $"'{indexPath}': weight_map entry of tensor '{p.Name}' must be a shard file name, found {p.Value.ValueKind}",
                        indexPath, p.Name);
                string shard = p.Value.GetString()!;
                // Shards live next to the index; a name that could reach elsewhere is rejected, not resolved.
                if (shard.Length == 0 || shard.Contains('/') || shard.Contains('\\') || shard.Contains("..")
                    || Path.IsPathRooted(shard) || shard.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
                    throw new ModelLoadException(
                        $"'{indexPath}': shard file name '{shard}' of tensor '{p.Name}' must be a plain file name in the model folder",
                        indexPath, p.Name);
                if (!result.TryAdd(p.Name, shard))
                    throw new ModelLoadException($"'{indexPath}': tensor '{p.Name}' appears twice in weight_map", indexPath, p.Name);
            }
            if (result.Count == 0)
                throw new ModelLoadException($"'{indexPath}': weight_map is empty", indexPath);
            return result;
        }
    }

    public bool Contains(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _tensors.ContainsKey(name);
    }

    public TensorView Get(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_tensors.TryGetValue(name, out TensorView view))
            return view;
        if (_files is [Gguf.GgufFile])
            throw new ModelLoadException($"tensor '{_fileNameOf(name)}' is missing from GGUF file '{_sourcePath}'", _sourcePath, _fileNameOf(name));
        throw new ModelLoadException(
            $"tensor '{name}' is missing from model folder '{Folder}' (looked in '{Path.GetFileName(_sourcePath)}')",
            _sourcePath, name);
    }

    /// <summary>The name the file gives the tensor of checkpoint name <paramref name="name"/>, for messages.</summary>
    public string FileNameOf(string name) => _fileNameOf(name);

    /// <summary>Full path of the model file that holds the tensor.</summary>
    public string FileOf(string name) => Get(name).FilePath;

    public TensorView Get(string name, params int[] expectedShape)
    {
        ArgumentNullException.ThrowIfNull(expectedShape);
        TensorView view = Get(name);
        if (!view.Shape.AsSpan().SequenceEqual(expectedShape))
            throw new ModelLoadException(
                $"tensor '{_fileNameOf(name)}' in '{view.FilePath}' has shape {SafetensorsFile.FormatShape(view.Shape)}, expected {SafetensorsFile.FormatShape(expectedShape)}",
                view.FilePath, _fileNameOf(name));
        return view;
    }

    /// <summary>
    /// Throws <see cref="ModelLoadException"/>, naming the file, when a mapped file no longer has the length it was
    /// mapped with (see <see cref="MappedFile.EnsureUnchanged"/>).
    /// </summary>
    public void EnsureUnchanged()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        foreach (IMappedModelFile f in _files)
            f.EnsureUnchanged();
    }

    /// <summary>
    /// Unmaps the pages of a tensor's bytes that have been copied elsewhere, so they stop counting in the process's
    /// resident memory (<see cref="MappedFile.DropPages"/>); reading them later still works.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The bytes are not inside one of the store's maps.</exception>
    public unsafe void DropPages(byte* start, long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        foreach (IMappedModelFile f in _files)
        {
            if (f.DropPages(start, bytes))
                return;
        }

        throw new ArgumentOutOfRangeException(nameof(start), "The bytes are not inside any of the model's maps.");
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (IMappedModelFile f in _files)
            f.Dispose();
    }
}
