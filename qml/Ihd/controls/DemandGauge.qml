import QtQuick
import QtQuick.Shapes
import Ihd

// A 270-degree arc filled in proportion to demand, up to fullScaleWatts.
Item {
    id: gauge
    property real watts: 0
    property bool active: true      // false: no current figure, draw the empty track only
    property real fullScaleWatts: 4000
    property color accent: Theme.electricity
    readonly property real fraction: Math.max(0, Math.min(1, watts / fullScaleWatts))
    readonly property real stroke: Math.max(10, width * 0.06)

    Shape {
        anchors.fill: parent
        preferredRendererType: Shape.CurveRenderer
        ShapePath {
            strokeColor: Theme.cardBorder
            strokeWidth: gauge.stroke
            fillColor: "transparent"
            capStyle: ShapePath.RoundCap
            PathAngleArc {
                centerX: gauge.width / 2; centerY: gauge.height / 2
                radiusX: gauge.width / 2 - gauge.stroke; radiusY: gauge.height / 2 - gauge.stroke
                startAngle: 135; sweepAngle: 270
            }
        }
        ShapePath {
            strokeColor: gauge.active ? gauge.accent : "transparent"
            strokeWidth: gauge.stroke
            fillColor: "transparent"
            capStyle: ShapePath.RoundCap
            PathAngleArc {
                centerX: gauge.width / 2; centerY: gauge.height / 2
                radiusX: gauge.width / 2 - gauge.stroke; radiusY: gauge.height / 2 - gauge.stroke
                startAngle: 135; sweepAngle: Math.max(0.5, 270 * gauge.fraction)
                Behavior on sweepAngle { NumberAnimation { duration: 600; easing.type: Easing.OutCubic } }
            }
        }
    }
}
