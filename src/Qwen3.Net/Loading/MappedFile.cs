using System.IO.MemoryMappedFiles;

namespace Qwen3.Net.Loading;

/// <summary>A validated, memory-mapped model file whose tensors a <see cref="TensorStore"/> hands out.</summary>
internal unsafe interface IMappedModelFile : IDisposable
{
    /// <summary>Full path of the file.</summary>
    string Path { get; }

    /// <summary>See <see cref="MappedFile.DropPages"/>.</summary>
    bool DropPages(byte* start, long bytes);

    /// <summary>Throws <see cref="ModelLoadException"/> when the file no longer has the length it was mapped with.</summary>
    void EnsureUnchanged();
}

/// <summary>
/// A model file memory-mapped read-only at the length it had when opened. Format readers validate their headers against
/// <see cref="Length"/> before handing out any pointer into the map. Messages name the file as "<c>{kind} '{path}'</c>".
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    readonly FileStream _stream;
    readonly MemoryMappedFile _map;
    readonly MemoryMappedViewAccessor _view;
    readonly string _kind;
    byte* _start;
    bool _disposed;

    MappedFile(string path, string kind, FileStream stream, long length, MemoryMappedFile map, MemoryMappedViewAccessor view)
    {
        Path = path;
        _kind = kind;
        _stream = stream;
        Length = length;
        _map = map;
        _view = view;
        byte* basePtr = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
        _start = basePtr + view.PointerOffset;

        // Asked before any page is read: the kernel then reads the file's uncached parts into 2 MiB page-cache folios
        // and maps them with 2 MiB entries, from which decode streams the weights faster than from 4 KiB pages
        // (docs/benchmarks.md).
        MemoryAdvice.HugePages(basePtr, (nuint)(view.PointerOffset + length));
    }

    /// <summary>Full path of the file.</summary>
    public string Path { get; }

    /// <summary>Length of the file in bytes when it was mapped: exactly the bytes the map covers.</summary>
    public long Length { get; }

    /// <summary>First byte of the map; valid until <see cref="Dispose"/>.</summary>
    public byte* Start
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _start;
        }
    }

    /// <summary>
    /// Opens the file (no writers that ask for exclusive access, and on Windows none at all, while it is open) and maps
    /// exactly the length it has now, which must be at least <paramref name="minimumLength"/> bytes.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="kind">How messages call the file, such as "safetensors file".</param>
    /// <param name="minimumLength">Bytes the format needs before its header can be read.</param>
    /// <param name="minimumWhat">What the minimum length holds, for the message of a shorter file.</param>
    public static MappedFile Open(string path, string kind, long minimumLength, string minimumWhat)
    {
        ArgumentNullException.ThrowIfNull(path);
        string fullPath = System.IO.Path.GetFullPath(path);

        FileStream stream;
        try
        {
            stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (FileNotFoundException e)
        {
            throw new ModelLoadException($"{kind} not found: '{fullPath}'", fullPath, inner: e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"cannot open {kind} '{fullPath}': {e.Message}", fullPath, inner: e);
        }

        long length = stream.Length;
        if (length < minimumLength)
        {
            stream.Dispose();
            throw new ModelLoadException($"{kind} '{fullPath}' is truncated: {length} bytes, less than the {minimumWhat}", fullPath);
        }

        // The map gets this length explicitly (not "the whole file"), so every later check compares against the bytes
        // actually mapped; the runtime refuses with ArgumentException if the file is already shorter.
        MemoryMappedFile map;
        try
        {
            map = MemoryMappedFile.CreateFromFile(stream, null, length, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            stream.Dispose();
            throw new ModelLoadException($"cannot memory-map '{fullPath}': {e.Message}", fullPath, inner: e);
        }

        MemoryMappedViewAccessor view;
        try
        {
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            map.Dispose();
            throw new ModelLoadException($"cannot memory-map '{fullPath}': {e.Message}", fullPath, inner: e);
        }

        return new MappedFile(fullPath, kind, stream, length, map, view);
    }

    /// <summary>
    /// Throws <see cref="ModelLoadException"/> when the file's length, read through the open handle (so a file renamed
    /// over this path does not count), is no longer the mapped length: a read past a new, shorter end would fault the
    /// process (SIGBUS). Nothing can stop another process from truncating the file later on Linux; see
    /// docs/architecture.md, "Mapped model files".
    /// </summary>
    public void EnsureUnchanged()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long now;
        try
        {
            now = RandomAccess.GetLength(_stream.SafeFileHandle);
        }
        catch (IOException e)
        {
            throw new ModelLoadException($"cannot read the length of {_kind} '{Path}': {e.Message}", Path, inner: e);
        }
        if (now != Length)
            throw new ModelLoadException(
                $"{_kind} '{Path}' changed size while being loaded: {Length} bytes were mapped, it now has {now}; "
                + "replace model files by renaming a complete new file over them, never by rewriting them in place",
                Path);
    }

    /// <summary>
    /// Unmaps the whole pages of bytes [<paramref name="start"/>, + <paramref name="bytes"/>) from the process, for
    /// tensors kept copied elsewhere (<see cref="MemoryAdvice.DropMappedPages"/>): they stay in the page cache, no longer
    /// count in the process's resident memory, and a later read maps them back. Returns false, doing nothing, where the
    /// range is not inside this map.
    /// </summary>
    public bool DropPages(byte* start, long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (start < _start || bytes < 0 || bytes > Length - (start - _start))
            return false;
        MemoryAdvice.DropMappedPages(start, bytes);
        return true;
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (_start != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _start = null;
        }
        _view.Dispose();
        _map.Dispose();
    }
}
