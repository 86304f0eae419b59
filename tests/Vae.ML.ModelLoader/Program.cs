// Usage: Vae.ML.ModelLoader MODEL.zip INPUT.f32 OUTPUT.json
// INPUT.f32 holds the rows of the model's single input vector column as raw little-endian float32 values.
// Writes JSON: whether Vae.ML was loaded before the model, the chain's transformer types, the output schema and every
// Single / Vector<Single> output column as the bit patterns of its values (so the caller can compare to the last bit).
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length != 3)
{
    Console.Error.WriteLine("Usage: Vae.ML.ModelLoader MODEL.zip INPUT.f32 OUTPUT.json");
    return 2;
}

static bool VaeMlLoaded() => AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name == "Vae.ML");

var loadedBefore = VaeMlLoaded();
var ml = new MLContext(seed: 0);
var model = ml.Model.Load(args[0], out var inputSchema);

if (inputSchema.Count != 1 || inputSchema[0].Type is not VectorDataViewType { ItemType: NumberDataViewType, Size: > 0 } inputType)
{
    Console.Error.WriteLine($"Expected one known-size float vector input column, got: {string.Join(", ", inputSchema.Select(c => $"{c.Name} {c.Type}"))}");
    return 3;
}

var width = inputType.Size;
var values = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(args[1])).ToArray();
var rows = Enumerable.Range(0, values.Length / width).Select(i => new InputRow { Values = values.AsSpan(i * width, width).ToArray() }).ToArray();
var definition = SchemaDefinition.Create(typeof(InputRow));
definition[0].ColumnName = inputSchema[0].Name;
definition[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
var output = model.Transform(ml.Data.LoadFromEnumerable(rows, definition));

var columns = new Dictionary<string, List<uint[]>>();
foreach (var column in output.Schema.Where(c => !c.IsHidden))
{
    if (column.Type == NumberDataViewType.Single)
    {
        columns[column.Name] = output.GetColumn<float>(column).Select(v => new[] { BitConverter.SingleToUInt32Bits(v) }).ToList();
    }
    else if (column.Type is VectorDataViewType { ItemType: var item } && item == NumberDataViewType.Single)
    {
        columns[column.Name] = output.GetColumn<VBuffer<float>>(column)
            .Select(v => v.DenseValues().Select(BitConverter.SingleToUInt32Bits).ToArray()).ToList();
    }
}

var report = new
{
    VaeMlLoadedBeforeModelLoad = loadedBefore,
    VaeMlLoadedAfterModelLoad = VaeMlLoaded(),
    Transformers = (model as IEnumerable<ITransformer> ?? [model]).Select(t => t.GetType().FullName).ToArray(),
    Schema = output.Schema.Where(c => !c.IsHidden).Select(c => new { c.Name, Type = c.Type.ToString() }).ToArray(),
    Columns = columns,
};
File.WriteAllText(args[2], JsonSerializer.Serialize(report));
(model as IDisposable)?.Dispose();
return 0;

internal sealed class InputRow
{
    public float[] Values { get; set; } = [];
}
