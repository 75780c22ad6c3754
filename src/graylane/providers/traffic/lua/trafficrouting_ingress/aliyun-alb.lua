-- graylane: canary Ingress annotations for Alibaba Cloud ALB Ingress (alb.ingress.kubernetes.io/).
-- Contract: obj.annotations, obj.weight ("-1": none), obj.matches in; the canary Ingress' annotations
-- out. ALB evaluates canary rules by `order`, so the canary Ingress is given order "1".
-- One header (or the "canary-by-cookie" pseudo header) per match; later matches win.
local alb = "alb.ingress.kubernetes.io/"
local annotations = {}
if type(obj.annotations) == "table" then
  for key, value in pairs(obj.annotations) do
    annotations[key] = value
  end
end

annotations[alb .. "canary"] = "true"
annotations[alb .. "order"] = "1"
for _, suffix in ipairs({ "canary-weight", "canary-by-header", "canary-by-header-value",
                          "canary-by-header-pattern", "canary-by-cookie" }) do
  annotations[alb .. suffix] = nil
end

if obj.weight ~= "-1" then
  annotations[alb .. "canary-weight"] = obj.weight
end

for _, match in ipairs(obj.matches or {}) do
  local first = match.headers and match.headers[1]
  if first and first.name == "canary-by-cookie" then
    annotations[alb .. "canary-by-cookie"] = first.value
  elseif first then
    annotations[alb .. "canary-by-header"] = first.name
    if first.type == "RegularExpression" then
      annotations[alb .. "canary-by-header-pattern"] = first.value
    else
      annotations[alb .. "canary-by-header-value"] = first.value
    end
  end
end

return annotations
