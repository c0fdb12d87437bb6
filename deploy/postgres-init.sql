-- One database per read-side service, and one access log for all (docker-compose.yml).
CREATE DATABASE readmission;
CREATE DATABASE coordination;
CREATE DATABASE fhir;
CREATE DATABASE audit;
