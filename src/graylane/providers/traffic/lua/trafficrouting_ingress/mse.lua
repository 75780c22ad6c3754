-- graylane: canary Ingress annotations for Alibaba Cloud MSE Ingress.
--
-- Contract: obj.annotations, obj.weight ("-1": none), obj.matches, obj.requestHeaderModifier in;
-- the canary Ingress' annotations out. MSE reads ingress-nginx's canary annotations and adds:
--   - query parameter routing: the first query parameter of a match (nginx.ingress.kubernetes.io/
--     canary-by-query[-value|-pattern], the keys Kruise writes; stale mse.ingress.kubernetes.io/
--     canary-by-query* keys are cleared too);
--   - request header rewriting: requestHeaderModifier.set -> mse.ingress.kubernetes.io/
--     request-header-control-update, one "name value" per line;
--   - an existing mse.ingress.kubernetes.io/service-subset is pointed at the "gray" subset.
local nginx = "nginx.ingress.kubernetes.io/"
local mse = "mse.ingress.kubernetes.io/"
local out = {}
for key, value in pairs(obj.annotations or {}) do
  out[key] = value
end

out[nginx .. "canary"] = "true"
for _, suffix in ipairs({ "canary-by-cookie", "canary-by-header", "canary-by-header-pattern",
                          "canary-by-header-value", "canary-weight", "canary-by-query",
                          "canary-by-query-pattern", "canary-by-query-value" }) do
  out[nginx .. suffix] = nil
end
for _, suffix in ipairs({ "canary-by-query", "canary-by-query-pattern", "canary-by-query-value" }) do
  out[mse .. suffix] = nil
end

if obj.weight ~= "-1" then
  out[nginx .. "canary-weight"] = obj.weight
end

if out[mse .. "service-subset"] ~= nil then
  out[mse .. "service-subset"] = "gray"
end

local modifier = obj.requestHeaderModifier
if modifier ~= nil then
  local lines = {}
  for _, header in ipairs(modifier.set or {}) do
    lines[#lines + 1] = header.name .. " " .. header.value
  end
  out[mse .. "request-header-control-update"] = table.concat(lines, "\n")
end

local function exact_or_pattern(key, condition)
  if condition.type == "RegularExpression" then
    out[nginx .. key .. "-pattern"] = condition.value
  else
    out[nginx .. key .. "-value"] = condition.value
  end
end

for _, match in ipairs(obj.matches or {}) do
  local header = match.headers and match.headers[1]
  if header and header.name == "canary-by-cookie" then
    out[nginx .. "canary-by-cookie"] = header.value
  elseif header then
    out[nginx .. "canary-by-header"] = header.name
    exact_or_pattern("canary-by-header", header)
  end
  local query = match.queryParams and match.queryParams[1]
  if query then
    out[nginx .. "canary-by-query"] = query.name
    exact_or_pattern("canary-by-query", query)
  end
end

return out
