using System.Runtime.InteropServices;
using Google.Protobuf;
using Vae.ML.Onnx.Protobuf;

namespace Vae.ML.Onnx;

/// <summary>
/// Builds one ONNX graph from the messages generated from onnx.proto: float initializers, nodes, inputs and outputs.
/// Every value gets a unique name; the public ones (the feature input and the output columns) are checked not to
/// collide with the internal ones (the PyTorch parameter names and "/vae/…" intermediates).
/// </summary>
internal sealed class OnnxGraphBuilder
{
    /// <summary>Opset of the default domain: every operator used here has had its current form since opset 13.</summary>
    public const long Opset = 17;

    /// <summary>IR version 8 (ONNX 1.10): what opset 17 needs at least, and what runtimes of the last years read.</summary>
    public const long IrVersion = 8;

    /// <summary>The symbolic batch dimension of the input and of every output.</summary>
    public const string BatchDimension = "N";

    private readonly GraphProto _graph;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private int _nodes;

    public OnnxGraphBuilder(string graphName) => _graph = new GraphProto { Name = graphName };

    public GraphProto Graph => _graph;

    /// <summary>A float32 graph input of shape [N, width...].</summary>
    public string Input(string name, params long[] widths)
    {
        Claim(name, "input");
        _graph.Input.Add(ValueInfo(name, widths));
        return name;
    }

    /// <summary>Makes <paramref name="value"/> the graph output <paramref name="name"/> (an Identity node renames it).</summary>
    public void Output(string value, string name, string docString, params long[] widths)
    {
        Claim(name, "output");
        _graph.Node.Add(new NodeProto { OpType = "Identity", Name = $"/vae/output/{name}", Input = { value }, Output = { name } });
        var info = ValueInfo(name, widths);
        info.DocString = docString;
        _graph.Output.Add(info);
    }

    /// <summary>A float32 constant tensor, stored little-endian in raw_data.</summary>
    public string Initializer(string name, long[] shape, ReadOnlySpan<float> values)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("ONNX raw_data is little-endian; exporting on a big-endian machine is not supported.");
        }

        var count = shape.Aggregate(1L, (a, b) => a * b);
        if (count != values.Length)
        {
            throw new ArgumentException($"Initializer '{name}' has {values.Length} values for shape [{string.Join(", ", shape)}].", nameof(values));
        }

        Claim(name, "initializer");
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values)) };
        tensor.Dims.AddRange(shape);
        _graph.Initializer.Add(tensor);
        return name;
    }

    /// <summary>A float32 scalar constant.</summary>
    public string Scalar(string name, float value) => Initializer($"/vae/const/{name}", [], [value]);

    /// <summary>An int64 constant vector (shapes and axes).</summary>
    public string Int64s(string name, params long[] values)
    {
        var fullName = $"/vae/const/{name}";
        Claim(fullName, "initializer");
        var tensor = new TensorProto { Name = fullName, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.AddRange(values);
        _graph.Initializer.Add(tensor);
        return fullName;
    }

    /// <summary>Adds a node with one output, named "/vae/{scope}/{op}_{n}", and returns that output's name.</summary>
    public string Node(string opType, string scope, IEnumerable<string> inputs, params AttributeProto[] attributes)
    {
        var name = $"/vae/{scope}/{opType}_{_nodes++}";
        Claim(name, "value");
        var node = new NodeProto { OpType = opType, Name = name, Output = { name } };
        node.Input.AddRange(inputs);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return name;
    }

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>A model around the graph: IR and opset versions, producer, and string metadata.</summary>
    public ModelProto ToModel(string docString, IEnumerable<KeyValuePair<string, string>> metadata)
    {
        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "Vae.ML",
            ProducerVersion = typeof(OnnxGraphBuilder).Assembly.GetName().Version?.ToString() ?? "",
            DocString = docString,
            Graph = _graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (key, value) in metadata)
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }

        return model;
    }

    private void Claim(string name, string what)
    {
        if (!_names.Add(name))
        {
            throw new InvalidOperationException(
                $"The ONNX {what} name '{name}' is already used by another value of the graph; rename the column (ONNX values share one namespace).");
        }
    }

    private static ValueInfoProto ValueInfo(string name, long[] widths)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = BatchDimension });
        foreach (var width in widths)
        {
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = width });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
