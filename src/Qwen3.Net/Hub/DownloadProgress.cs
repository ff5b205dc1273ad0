namespace Qwen3.Net.Hub;

/// <summary>How far a model download is, reported as bytes arrive (several files may be in flight at once).</summary>
/// <param name="FileName">The file the last bytes belonged to (a path inside the repository).</param>
/// <param name="FileBytes">Bytes of that file present so far (resumed bytes included).</param>
/// <param name="FileSize">That file's size.</param>
/// <param name="Bytes">Bytes present so far over all the files being downloaded.</param>
/// <param name="TotalBytes">Bytes of all the files being downloaded (cached files not counted).</param>
public readonly record struct DownloadProgress(string FileName, long FileBytes, long FileSize, long Bytes, long TotalBytes);
